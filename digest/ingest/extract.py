"""One entry point for cleaning: a page or a text dump in, an :class:`Extracted` article out.

``extract`` decodes bytes, decides whether the content is HTML or flattened text, normalises the
Unicode and hands over to the cleaner for that kind: :func:`digest.ingest.dumps.clean_text` for
text, :func:`digest.ingest.pages.clean_html` for HTML.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from digest.errors import ExtractionError


@dataclass(frozen=True, slots=True)
class Extracted:
    """A cleaned article. ``body`` holds paragraphs separated by one blank line."""

    title: str
    body: str
    credit: str | None = None
    author: str | None = None
    published: datetime | None = None
    url: str | None = None
    image_url: str | None = None
    image_alt: str | None = None
    language: str | None = None
    summary: str | None = None

    @property
    def paragraphs(self) -> list[str]:
        """The body split into its paragraphs."""
        return [p for p in self.body.split("\n\n") if p]

    def to_json(self) -> dict[str, object]:
        """Return a JSON-ready dict; ``published`` becomes an ISO 8601 string."""
        return {
            "title": self.title,
            "body": self.body,
            "credit": self.credit,
            "author": self.author,
            "published": self.published.isoformat() if self.published else None,
            "url": self.url,
            "image_url": self.image_url,
            "image_alt": self.image_alt,
            "language": self.language,
            "summary": self.summary,
        }


_HTML_SIGNS = re.compile(
    r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<(?:p|div|article|span|a|br|h[1-6]|meta)[\s/>]",
    re.IGNORECASE,
)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
# Zero-width characters and the soft hyphen carry no text; BOMs inside text are debris.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def detect_kind(content: str | bytes) -> str:
    """Return ``"html"`` when the content looks like markup, else ``"text"``."""
    head = content[:4096]
    if isinstance(head, bytes):
        head = head.decode("latin-1")
    signs = _HTML_SIGNS.findall(head)
    stripped = head.lstrip().lower()
    if stripped.startswith(("<!doctype html", "<html", "<?xml")) and "<html" in head.lower():
        return "html"
    return "html" if len(signs) >= 2 else "text"


def decode(content: bytes) -> str:
    """Decode bytes to text: BOM, then UTF-8, then a declared ``<meta charset>``, then sniffing.

    Raises ExtractionError when the bytes look binary (NUL bytes or many control bytes).
    """
    if not content:
        return ""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if content.startswith(bom):
            return content.decode(encoding, errors="replace")
    sample = content[:8192]
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    if b"\x00" in sample or controls > len(sample) * 0.05:
        raise ExtractionError("the content looks binary, not text or HTML; give a page or a dump")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _META_CHARSET.search(content[:4096])
    if declared:
        try:
            return content.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(content).best()
        if best is not None:
            return str(best)
    except ImportError:  # pragma: no cover - charset_normalizer comes with trafilatura
        pass
    return content.decode("cp1252", errors="replace")


def normalise(text: str) -> str:
    """Return NFC text without zero-width or control characters, with ``\\n`` line ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _CONTROL.sub("", text)


def extract(content: str | bytes, *, kind: str | None = None, url: str | None = None) -> Extracted:
    """Clean one page (``kind="html"``) or flattened text dump (``kind="text"``).

    ``kind`` is detected when None. Returns the article; raises ExtractionError when the
    content is binary, empty, or yields no article body.
    """
    text = decode(content) if isinstance(content, bytes) else content
    if not text.strip():
        raise ExtractionError("the content is empty; nothing to extract")
    if kind is None:
        kind = detect_kind(text)
    text = normalise(text)
    result: Extracted
    if kind == "text":
        from digest.ingest.dumps import clean_text

        result = clean_text(text, url=url)
    elif kind == "html":
        from digest.ingest.pages import clean_html

        result = clean_html(text, url=url)
    else:
        raise ExtractionError(f"unknown content kind {kind!r}; use 'html' or 'text'")
    if not result.body.strip():
        where = f" at {url}" if url else ""
        raise ExtractionError(f"no article text found in the {kind} content{where}")
    return result
