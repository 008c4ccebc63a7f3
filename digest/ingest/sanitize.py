"""Make foreign text and HTML safe to store and to put in an email.

``sanitize_html`` keeps a small set of formatting tags and drops everything that can run code,
submit data or watch the reader: scripts, styles, event handlers, ``javascript:`` and ``data:``
URLs, forms, iframes and tracking pixels. ``normalise_text`` makes text comparable: NFC,
no control or invisible characters, one kind of space and line break.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

import lxml.html
import nh3
from lxml import etree

# Tags an article body may keep; everything else is unwrapped (its text stays).
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl",
        "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span",
        "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr",
        "u", "ul",
    }
)  # fmt: skip

# Tags removed together with their content: code, embedded documents, and forms.
DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "noscript", "template", "iframe", "frame", "frameset", "object",
        "embed", "applet", "form", "input", "button", "select", "textarea", "option", "svg",
        "math", "canvas", "audio", "video", "dialog",
    }
)  # fmt: skip

ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "ol": {"start"},
    "blockquote": {"cite"},
    "q": {"cite"},
}

URL_SCHEMES = frozenset({"http", "https", "mailto"})

# Shapes of web beacons: file names and path pieces that analytics and mail-tracking services
# use for 1×1 images. Matched against the URL path, never against outlet names.
_BEACON_PATH = re.compile(
    r"(?:^|/)(?:pixel|beacon|spacer|blank|clear|transparent|1x1|track(?:ing)?|open|imp(?:ression)?"
    r"|p|t|b|e|o|px|tr|collect|ping|count(?:er)?|wf/open)(?:\.(?:gif|png|jpe?g|php|aspx?|cgi))?$",
    re.IGNORECASE,
)
_BEACON_QUERY = re.compile(r"(?:^|&)(?:utm_[a-z]+|tid|cid|uid|ev|event)=", re.IGNORECASE)

# Invisible characters that only ever hide text or break matching. Zero-width (non-)joiners are
# handled separately: they carry meaning inside Persian, Indic and emoji sequences.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
_JOINER_OUTSIDE_WORDS = re.compile(
    r"(?<![^\x00-\x7f])[\u200c\u200d]|[\u200c\u200d](?![^\x00-\x7f])"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\t]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")


def normalise_text(text: str) -> str:
    """Return ``text`` in NFC with control and invisible characters removed.

    Line breaks become ``\\n`` and exotic spaces (no-break, thin, ideographic, tabs) become a plain
    space; runs of spaces are kept as they are so that callers decide about layout. Never raises.
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    text = _JOINER_OUTSIDE_WORDS.sub("", text)
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    return unicodedata.normalize("NFC", text)


def is_tracking_pixel(*, src: str, width: str | None = None, height: str | None = None) -> bool:
    """True when an image is a web beacon: 1×1 (or hidden) by its size, or a beacon by its URL."""
    # A picture one pixel wide or high shows nothing; only beacons and spacers are that small.
    return _tiny(width) or _tiny(height) or _beacon_url(src)


def _tiny(value: str | None) -> bool:
    if value is None:
        return False
    digits = re.match(r"\s*(\d+)", value)
    return digits is not None and int(digits.group(1)) <= 1


def _beacon_url(src: str) -> bool:
    parts = urlsplit(src.strip())
    if parts.scheme not in {"http", "https", ""}:
        return False
    path = parts.path.rstrip("/")
    return bool(_BEACON_PATH.search(path)) or (
        path.lower().endswith((".gif", ".php", ".aspx", ".cgi"))
        and bool(_BEACON_QUERY.search(parts.query))
    )


def sanitize_html(html: str) -> str:
    """Return a safe HTML fragment: allowed tags and attributes only, http(s)/mailto links only,
    no scripts, handlers, forms, iframes or tracking pixels. Never raises; empty in, empty out."""
    if not html.strip():
        return ""
    html = _drop_pixels(normalise_text(html))
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _drop_pixels(html: str) -> str:
    """Remove beacon images before nh3 sees them (nh3 can filter attributes, not elements)."""
    if "<img" not in html.lower():
        return html
    try:
        fragments = lxml.html.fragments_fromstring(html)
    except (etree.ParserError, ValueError):
        return html
    out: list[str] = []
    for fragment in fragments:
        if isinstance(fragment, str):
            out.append(fragment)
            continue
        images = [fragment] if fragment.tag == "img" else list(fragment.iter("img"))
        for img in images:
            style = (img.get("style") or "").replace(" ", "").lower()
            hidden = "display:none" in style or "visibility:hidden" in style
            if hidden or is_tracking_pixel(
                src=img.get("src") or "", width=img.get("width"), height=img.get("height")
            ):
                if img is fragment:
                    fragment = None
                    out.append(img.tail or "")
                    break
                img.drop_tree()
        if fragment is not None:
            out.append(lxml.html.tostring(fragment, encoding="unicode"))
    return "".join(out)
