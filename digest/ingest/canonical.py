"""The identity of an article: its canonical URL, or a hash of its text when it has no URL.

Two fetches of the same story (from a feed with campaign parameters, from a share link with a
fragment, from a page whose host is written in capitals) must land on the same ``Article.key``,
so that ingesting it again updates the row instead of adding another.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from digest.errors import InputError
from digest.ingest.sanitize import normalise_text

# Query parameters that say who sent the reader, never which page they get. Ambiguous names
# (``source``, ``src``, ``id``) stay: on some sites they select the page.
_TRACKING_EXACT = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
        "mc_cid", "mc_eid", "igshid", "igsh", "_hsenc", "_hsmi", "hsctatracking", "mkt_tok",
        "ref", "ref_src", "ref_url", "referrer", "cmpid", "ito", "ocid", "ncid", "sr_share",
        "smid", "smtyp", "s_cid", "wt.mc_id", "spm", "vero_id", "oly_enc_id", "oly_anon_id",
        "__twitter_impression",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_", "ga_", "_ga", "stm_", "trk_")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SPACES = re.compile(r"\s+")


def is_tracking_param(name: str) -> bool:
    """True for query parameters that only identify a campaign, referrer or click."""
    lowered = name.lower()
    return lowered in _TRACKING_EXACT or lowered.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """Return ``url`` in its canonical form.

    Scheme and host are lower-cased (IDN hosts become punycode), the default port, the fragment,
    user info and tracking parameters are dropped, the remaining query parameters are sorted and
    the path keeps its case (paths are case-sensitive on most servers). An empty path becomes
    ``/``. Raises ``InputError`` when ``url`` is not an absolute http(s) URL.
    """
    raw = url.strip()
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InputError(f"not an absolute http(s) URL: {raw[:200]!r}")
    host = _host(parts.hostname)
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"bad port in URL: {raw[:200]!r}") from None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~%") or "/"
    kept = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking_param(name)
    ]
    query = urlencode(sorted(kept), quote_via=quote)
    return urlunsplit((scheme, netloc, path, query, ""))


def _host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def content_key(*, title: str, body: str) -> str:
    """``sha256:<hex>`` of the normalised title and body (case and spacing do not matter)."""
    text = f"{_flatten(title)}\n{_flatten(body)}"
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(text: str) -> str:
    """Hex sha256 of normalised text: tells an update from an unchanged re-fetch."""
    return hashlib.sha256(_flatten(text).encode("utf-8")).hexdigest()


def _flatten(text: str) -> str:
    return _SPACES.sub(" ", normalise_text(text)).strip().casefold()


def article_key(*, url: str | None, title: str, body: str) -> str:
    """The unique key of an article: its canonical URL, or ``sha256:`` of its text without one.

    A URL that is not absolute http(s) (a file path, ``urn:``) falls back to the content hash.
    """
    if url:
        try:
            return canonical_url(url)
        except InputError:
            pass
    return content_key(title=title, body=body)
