"""RSS 0.9x/1.0/2.0 and Atom feeds into entries, and entries into articles.

feedparser reads every dialect; this module turns its loose dictionaries into typed entries with
canonical URLs, aware UTC dates, sanitised content and plain paragraphs, and refuses what is not
a feed with one line naming it.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.errors import InputError, SourceError
from digest.ingest.canonical import canonical_url
from digest.ingest.extract import Extracted
from digest.ingest.page_meta import parse_datetime
from digest.ingest.pages import fragment_paragraphs
from digest.ingest.sanitize import normalise_text, sanitize_html

# An entry whose text is shorter than this, or that ends like a cut-off, is a teaser: the
# article itself is on the linked page.
TEASER_WORDS = 80
_CUT_OFF = re.compile(
    r"(?:\.\.\.|…|\[\s*(?:\.\.\.|…)\s*\]|read more\W*|continue reading\W*)$", re.I
)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class FeedEntry:
    title: str
    url: str | None
    summary: str | None
    content_html: str | None
    published: datetime | None
    author: str | None
    image_url: str | None
    image_alt: str | None
    guid: str | None = None
    language: str | None = None

    @property
    def paragraphs(self) -> list[str]:
        """The entry's text as paragraphs: its full content, else its summary."""
        if self.content_html:
            found = fragment_paragraphs(self.content_html)
            if found:
                return found
        return fragment_paragraphs(self.summary or "")

    @property
    def is_teaser(self) -> bool:
        """True when the feed carries only the start of the article."""
        text = " ".join(self.paragraphs)
        return len(_WORD.findall(text)) < TEASER_WORDS or bool(_CUT_OFF.search(text.strip()))


@dataclass(frozen=True, slots=True)
class FeedResult:
    url: str
    title: str
    link: str | None
    language: str | None
    entries: list[FeedEntry]
    problem: str | None = None  # feedparser's complaint about a feed it could still read


def parse_feed(data: bytes, *, url: str, content_type: str | None = None) -> FeedResult:
    """Parse feed bytes fetched from ``url``.

    Returns every entry with a title or a link. Raises SourceError naming ``url`` when the bytes
    are not a feed (an HTML page, a truncated or malformed document with no entries).
    """
    # Without a content type feedparser flags every document; XML is what a feed URL promises.
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    parsed = feedparser.parse(data, response_headers=headers, sanitize_html=False)
    entries = [e for e in (_entry(raw, feed=parsed.feed) for raw in parsed.entries) if e]
    problem = _problem(parsed)
    if not entries and (parsed.bozo or not parsed.get("version")):
        what = "an HTML page" if _looks_like_html(data) else "not an RSS or Atom feed"
        reason = problem or what
        raise SourceError(f"feed {url}: {reason}; no entries could be read")
    feed = parsed.feed
    return FeedResult(
        url=url,
        title=_text(feed.get("title")) or url,
        link=feed.get("link"),
        language=_language(feed.get("language")),
        entries=entries,
        problem=problem if parsed.bozo else None,
    )


def _problem(parsed: Any) -> str | None:
    exc = parsed.get("bozo_exception")
    if exc is None:
        return None
    message = str(getattr(exc, "getMessage", lambda: exc)()).strip()
    return message.splitlines()[0][:200] if message else type(exc).__name__


def _looks_like_html(data: bytes) -> bool:
    head = data[:2048].lower()
    return b"<html" in head or b"<!doctype html" in head


def _entry(raw: Any, *, feed: Any) -> FeedEntry | None:
    title = _text(raw.get("title"))
    link = _link(raw)
    if not title and not link:
        return None
    content = _content(raw)
    summary_html = raw.get("summary") or ""
    summary = " ".join(fragment_paragraphs(summary_html)) or None
    image_url, image_alt = _image(raw, content or summary_html)
    return FeedEntry(
        title=title or "",
        url=link,
        summary=summary,
        content_html=sanitize_html(content) if content else None,
        published=_published(raw),
        author=_text(raw.get("author")),
        image_url=image_url,
        image_alt=image_alt,
        guid=raw.get("id"),
        language=_language(raw.get("language") or feed.get("language")),
    )


def _link(raw: Any) -> str | None:
    candidates = [raw.get("link")]
    candidates += [lk.get("href") for lk in raw.get("links", []) if lk.get("rel") == "alternate"]
    guid = raw.get("id")
    if raw.get("guidislink") or (isinstance(guid, str) and guid.startswith("http")):
        candidates.append(guid)
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return canonical_url(candidate)
        except InputError:
            continue
    return None


def _content(raw: Any) -> str | None:
    """The longest full-content block (Atom ``content``, RSS ``content:encoded``)."""
    blocks = [c.get("value") or "" for c in raw.get("content", [])]
    blocks = [b for b in blocks if b.strip()]
    return max(blocks, key=len) if blocks else None


def _published(raw: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = raw.get(key)
        if isinstance(parsed, time.struct_time):
            # feedparser normalises to UTC; timegm reads the struct as UTC.
            return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    for key in ("published", "updated"):
        moment = parse_datetime(raw.get(key))
        if moment is not None:
            return moment
    return None


def _image(raw: Any, html: str) -> tuple[str | None, str | None]:
    """The entry's picture: Media RSS, an image enclosure, else the first image in its
    content; the alt text comes from the content's ``<img>`` of the same picture."""
    images = _content_images(html)
    for media in list(raw.get("media_content", [])) + list(raw.get("media_thumbnail", [])):
        url = media.get("url")
        if url and (media.get("medium") in (None, "image") or "image" in media.get("type", "")):
            return url, images.get(url)
    for enclosure in raw.get("enclosures", []):
        if enclosure.get("type", "").startswith("image/") and enclosure.get("href"):
            return enclosure["href"], images.get(enclosure["href"])
    for src, alt in images.items():
        if src.startswith(("http://", "https://")):
            return src, alt
    return None, None


def _content_images(html: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for tag in re.findall(r"<img\b[^>]*>", html, re.IGNORECASE):
        src = re.search(r"""src\s*=\s*["']([^"']+)""", tag)
        alt = re.search(r"""alt\s*=\s*["']([^"']*)""", tag)
        if src:
            found.setdefault(src.group(1), _text(alt.group(1)) if alt else None)
    return found


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if "<" in value:
        value = " ".join(fragment_paragraphs(value))
    text = re.sub(r"\s+", " ", normalise_text(value)).strip()
    return text or None


def _language(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    primary = re.split(r"[-_]", value.strip().lower(), maxsplit=1)[0]
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def entry_article(entry: FeedEntry, *, page: Extracted | None = None) -> Extracted:
    """The article a feed entry stands for. With ``page`` (the cleaned linked page, for teaser
    entries of sources that fetch the full text) the page's body and metadata win, and the
    feed's fill the gaps. Raises InputError when the entry has no text at all."""
    paragraphs = entry.paragraphs
    if page is not None and page.body.strip():
        return Extracted(
            title=entry.title or page.title,
            body=page.body,
            credit=page.credit,
            author=page.author or entry.author,
            published=entry.published or page.published,
            url=entry.url or page.url,
            image_url=page.image_url or entry.image_url,
            image_alt=page.image_alt or entry.image_alt,
            language=page.language or entry.language,
            summary=entry.summary or page.summary,
        )
    if not paragraphs and not entry.title:
        raise InputError(f"feed entry {entry.url or entry.guid or '?'} has no title and no text")
    return Extracted(
        title=entry.title or paragraphs[0][:200],
        body="\n\n".join(paragraphs) or entry.title,
        author=entry.author,
        published=entry.published,
        url=entry.url,
        image_url=entry.image_url,
        image_alt=entry.image_alt,
        language=entry.language,
        summary=entry.summary,
    )
