"""What a page says about itself: its charset, title, author, dates, canonical URL, lead image,
language.

Read from the places publishers put them, in order of trust: JSON-LD and OpenGraph/meta tags,
then the visible markup (``<h1>``, ``<time>``, ``<figure>``). Pure functions over a parsed tree.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html

from digest.ingest.sanitize import normalise_text

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "reportagenewsarticle", "webpage",
                  "analysisnewsarticle", "opinionnewsarticle", "report", "techarticle"}  # fmt: skip
_CREDIT_PREFIX = re.compile(
    r"^\W*(?:(?:photo(?:graph)?s?|image|picture|illustration|credit|source|foto)"
    r"(?:\s+(?:by|credit|courtesy(?:\s+of)?))?\s*[:©]\s*|©\s*|\(c\)\s*)",
    re.IGNORECASE,
)
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
        "nav", "ol", "p", "pre", "section", "table", "tr", "td", "th", "ul", "br",
    }
)  # fmt: skip
_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "iframe", "head", "object", "form"}
)


@dataclass(frozen=True, slots=True)
class PageMeta:
    title: str | None = None
    author: str | None = None
    published: datetime | None = None
    canonical: str | None = None
    image_url: str | None = None
    image_alt: str | None = None
    language: str | None = None
    summary: str | None = None
    credit: str | None = None
    captions: list[str] = field(default_factory=list)


def declared_charset(head: bytes) -> str | None:
    """The charset a page declares in ``<meta charset>`` or ``http-equiv``, if any."""
    found = _META_CHARSET.search(head)
    return found.group(1).decode("ascii", errors="ignore") if found else None


def decode_html(data: bytes, *, charset: str | None = None) -> str:
    """Decode a page: BOM, then the HTTP ``charset``, then ``<meta charset>``, then UTF-8, then
    cp1252. Undecodable bytes become U+FFFD; this never raises."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    declared = [charset, declared_charset(data[:4096])]
    for name in declared:
        known = _known_encoding(name)
        if known is None:
            continue
        if known == "utf-8":
            break  # checked strictly below, with cp1252 as the fallback
        return data.decode(known, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _known_encoding(name: str | None) -> str | None:
    if not name:
        return None
    try:
        found = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    # Pages labelled latin-1 are in practice cp1252 (browsers decode them so).
    return "cp1252" if found in {"latin-1", "iso8859-1", "ascii"} else found


def read(tree: lxml.html.HtmlElement, *, url: str | None) -> PageMeta:
    """Collect the page's metadata; every field may be None. Never raises."""
    meta = _meta_tags(tree)
    ld = _json_ld(tree)
    base = url or ""
    canonical = _first_attr(tree, "//link[@rel='canonical']/@href") or meta.get("og:url")
    if canonical:
        canonical = urljoin(base, canonical)
        if urlsplit(canonical).scheme not in {"http", "https"}:
            canonical = None
    image = meta.get("og:image") or meta.get("og:image:url") or meta.get("twitter:image")
    image = image or _ld_image(ld.get("image"))
    image_alt = meta.get("og:image:alt") or meta.get("twitter:image:alt")
    figure_alt, credit, captions = _figures(tree, image=image)
    return PageMeta(
        title=_title(tree, meta, ld, host=urlsplit(canonical or base).hostname),
        author=_author(tree, meta, ld),
        published=_published(tree, meta, ld),
        canonical=canonical,
        image_url=urljoin(base, image) if image else None,
        image_alt=_text(image_alt or figure_alt),
        language=_language(tree, meta),
        summary=_text(meta.get("og:description") or meta.get("description")),
        credit=credit,
        captions=captions,
    )


def _meta_tags(tree: lxml.html.HtmlElement) -> dict[str, str]:
    out: dict[str, str] = {}
    for element in tree.iter("meta"):
        key = element.get("property") or element.get("name") or element.get("itemprop")
        key = key or element.get("http-equiv")
        value = element.get("content")
        if key and value and value.strip():
            out.setdefault(key.strip().lower(), value.strip())
    return out


def _json_ld(tree: lxml.html.HtmlElement) -> dict[str, Any]:
    """The first article-like JSON-LD object on the page (``@graph`` searched too)."""
    for script in tree.xpath("//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "")
        except (json.JSONDecodeError, RecursionError):
            continue
        for item in _ld_items(data):
            kind = item.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(k, str) and k.lower() in _ARTICLE_TYPES for k in kinds):
                return item
    return {}


def _ld_items(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [x for item in data for x in _ld_items(item)]
    if isinstance(data, dict):
        graph = data.get("@graph")
        return [data, *(_ld_items(graph) if graph else [])]
    return []


def _ld_image(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        return _ld_image(value[0])
    if isinstance(value, dict):
        url = value.get("url") or value.get("contentUrl")
        return url if isinstance(url, str) else None
    return None


def _title(
    tree: lxml.html.HtmlElement, meta: dict[str, str], ld: dict[str, Any], *, host: str | None
) -> str | None:
    headline = ld.get("headline") if isinstance(ld.get("headline"), str) else None
    h1 = _first_text(tree, "//article//h1") or _first_text(tree, "//h1")
    candidate = headline or meta.get("og:title") or h1 or _first_text(tree, "//title")
    site = meta.get("og:site_name")
    if candidate and site and candidate.endswith(site) and candidate != site:
        candidate = re.sub(r"\s*[|\-–—:·]\s*$", "", candidate[: -len(site)])
    return _text(_without_site_suffix(candidate, host=host))


def _without_site_suffix(title: str | None, *, host: str | None) -> str | None:
    """ "Headline - Site" → "Headline" when "Site" is the name in the page's host."""
    if not title or not host:
        return title
    found = re.match(r"^(?P<head>.+?)\s+[|\-–—·]\s+(?P<tail>[^|\-–—·]+)$", title)
    if found is None:
        return title
    name = re.sub(r"\W", "", found.group("tail")).lower().removeprefix("the")
    labels = {re.sub(r"\W", "", label) for label in host.lower().split(".")}
    return found.group("head").strip() if len(name) > 2 and name in labels else title


def _author(tree: lxml.html.HtmlElement, meta: dict[str, str], ld: dict[str, Any]) -> str | None:
    names: list[str] = []
    authors = ld.get("author")
    for person in authors if isinstance(authors, list) else [authors]:
        if isinstance(person, dict) and isinstance(person.get("name"), str):
            names.append(person["name"])
        elif isinstance(person, str):
            names.append(person)
    if names:
        return _text(", ".join(dict.fromkeys(n.strip() for n in names if n.strip())))
    for key in ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author"):
        value = meta.get(key)
        if value and not value.startswith(("http://", "https://")):
            return _text(value)
    return _text(_first_text(tree, "//*[@rel='author' or @itemprop='author']"))


def _published(
    tree: lxml.html.HtmlElement, meta: dict[str, str], ld: dict[str, Any]
) -> datetime | None:
    candidates = [
        ld.get("datePublished"),
        meta.get("article:published_time"),
        meta.get("og:published_time"),
        meta.get("datepublished"),
        meta.get("pubdate"),
        meta.get("publishdate"),
        meta.get("date"),
        meta.get("dc.date"),
        meta.get("dcterms.created"),
        _first_attr(tree, "//time[@datetime]/@datetime"),
        ld.get("dateCreated"),
    ]
    for value in candidates:
        moment = parse_datetime(value)
        if moment is not None:
            return moment
    return None


def parse_datetime(value: object) -> datetime | None:
    """An ISO 8601 or RFC 2822 timestamp as an aware UTC datetime (naive ones are taken as UTC),
    or None when it cannot be read."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1990 <= moment.year <= 2100:
        return None
    return moment.astimezone(UTC)


def _language(tree: lxml.html.HtmlElement, meta: dict[str, str]) -> str | None:
    declared = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    declared = declared or meta.get("content-language") or meta.get("og:locale")
    if not declared:
        return None
    primary = re.split(r"[-_,;\s]", declared.strip().lower(), maxsplit=1)[0]
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def _figures(
    tree: lxml.html.HtmlElement, *, image: str | None
) -> tuple[str | None, str | None, list[str]]:
    """The lead figure's alt text and photo credit, and every caption on the page (captions
    are not body text)."""
    captions: list[str] = []
    credit: str | None = None
    alt: str | None = None
    wanted = _file_name(image)
    for number, figure in enumerate(tree.xpath("//figure")):
        caption = " ".join(figure.xpath(".//figcaption//text()"))
        caption = re.sub(r"\s+", " ", caption).strip()
        if caption:
            captions.append(caption)
        for part in figure.xpath(
            ".//figcaption//*[contains(@class,'credit') or "
            "contains(@class,'copyright') or contains(@class,'author')]"
        ):
            text = _text(part.text_content())
            if text:
                captions.append(text)
        lead = number == 0 or (wanted and any(
            _file_name(src) == wanted for src in figure.xpath(".//img/@src")
        ))  # fmt: skip
        if lead and credit is None:
            credit = _figure_credit(figure, caption)
            if alt is None:
                alt = _first_attr(figure, ".//img/@alt")
    return alt, credit, captions


def _figure_credit(figure: lxml.html.HtmlElement, caption: str) -> str | None:
    marked = figure.xpath(".//*[contains(@class,'credit') or contains(@class,'copyright')]")
    if marked:
        return credit_text(marked[0].text_content())
    found = re.search(r"(?:photo(?:graph)?|image|credit|picture)\s*(?:by|:)\s*(.+)$|©\s*(.+)$",
                      caption, re.IGNORECASE)  # fmt: skip
    if found:
        return credit_text(found.group(1) or found.group(2) or "")
    return None


def credit_text(line: str) -> str | None:
    """A credit line without its "Photo:"/"©" prefix and surrounding brackets."""
    text = _CREDIT_PREFIX.sub("", normalise_text(line)).strip(" ()[]\t")
    return text or None


def _file_name(url: str | None) -> str | None:
    if not url:
        return None
    return urlsplit(url).path.rsplit("/", 1)[-1] or None


def _first_text(tree: lxml.html.HtmlElement, xpath: str) -> str | None:
    for element in tree.xpath(xpath):
        text = re.sub(r"\s+", " ", element.text_content()).strip()
        if text:
            return text
    return None


def _first_attr(tree: lxml.html.HtmlElement, xpath: str) -> str | None:
    for value in tree.xpath(xpath):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _text(value: str | None) -> str | None:
    if not value:
        return None
    text = re.sub(r"\s+", " ", normalise_text(value)).strip()
    return text[:1000] or None


def block_texts(root: lxml.html.HtmlElement) -> list[str]:
    """Visible text of ``root``, one string per block element, in document order."""
    parts: list[str] = []
    _walk(root, parts)
    lines = (re.sub(r"\s+", " ", chunk).strip() for chunk in "".join(parts).split("\n"))
    return [line for line in lines if line]


def _walk(element: Any, parts: list[str]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if not tag or tag in _SKIP:
        if element.tail:
            parts.append(element.tail)
        return
    block = tag in _BLOCK
    if block:
        parts.append("\n")
    if element.text:
        parts.append(element.text)
    for child in element:
        _walk(child, parts)
    if block:
        parts.append("\n")
    if element.tail:
        parts.append(element.tail)
