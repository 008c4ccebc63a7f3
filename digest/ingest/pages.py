"""Article pages (HTML) into clean articles: the body text and the page's metadata.

trafilatura finds the main text of the page without its dialogs, popups and tooltips; digest then
chooses between its precise and its recall-oriented reading, falls back to the page's plain
paragraphs (outside navigation, sidebars and comment threads) when both miss most of it, and
removes what trafilatura lets through: repeated blocks, "Read more:" cross-links, caption and
credit lines, and the trailing sections that follow an article (related stories, author boxes,
share bars, newsletter and comment blocks). The line classifier then gives a second reading of
the page (``digest.ingest.readings``): it drops the lines it is sure are boilerplate, puts back
paragraphs trafilatura skipped in the middle of the article, and replaces trafilatura's reading
when that one holds the wrong block. The rules are about the shape of a page, not about any
outlet's wording.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import lxml.html
import trafilatura
from lxml import etree

from digest.errors import ExtractionError
from digest.ingest import page_meta, readings
from digest.ingest.extract import Extracted
from digest.ingest.page_meta import decode_html
from digest.ingest.readings import TextModels as TextModels
from digest.ingest.sanitize import normalise_text
from digest.settings import Settings

DEFAULT_MAX_BYTES: int = Settings.model_fields["max_page_bytes"].default

_WORD = re.compile(r"\w+", re.UNICODE)
# The precise reading is kept unless the recall reading finds clearly more (10%): trafilatura's
# precise pass sometimes stops at the first sub-heading or table.
_RECALL_RATIO = 0.9
# Below half of the page's plain paragraphs, both readings have missed the article body.
_BASELINE_RATIO = 0.5
_BASELINE_MIN_WORDS = 100
# A section marker only ends the article when less than this share of the words follows it;
# further up, "Related" and "Read more" boxes sit inside the article and only they are dropped.
_TAIL_SHARE = 0.2
_MARKER_MAX_WORDS = 8
_REPEAT_MIN_WORDS = 6
# Fewer words than this is a navigation shell or an error page, not an article.
_MIN_WORDS = 15

_SECTION_MARKER = re.compile(
    r"""^\W*(?:
      related(?:\s+\w+){0,4}
    | read\s+(?:this\s+)?(?:next|more|also)\b.*
    | more\s+(?:from|on|in|about|stories|articles|news|posts)\b.*
    | (?:you|we\s+think\s+you)\s+(?:may|might|will)\s+(?:also\s+)?(?:like|enjoy|be\s+interested).*
    | recommended(?:\s+\w+){0,3}
    | (?:most\s+)?popular(?:\s+\w+){0,3}
    | trending(?:\s+\w+){0,3}
    | (?:latest|recent)\s+(?:posts|news|articles|stories)\b.*
    | about\s+the\s+authors?
    | (?:written|reviewed|edited|fact[- ]checked)\s+by\b.*
    | disclaimer | disclosure
    | share(?:\s+this)?(?:\s+\w+){0,2}
    | follow\s+us\b.* | social\s+media
    | (?:sign\s+up|subscribe)\b.*
    | (?:our\s+|the\s+)?newsletter\b.*
    | comments?(?:\s*\(\d+\))? | \d+\s+comments?
    | leave\s+a\s+(?:reply|comment)\b.*
    | (?:post\s+)?tags?\s*:? | categories | filed\s+under\b.*
    | article\s+sources | advertisement | sponsored(?:\s+\w+){0,3}
    )\W*$""",
    re.IGNORECASE | re.VERBOSE,
)
_CROSS_LINK = re.compile(
    r"^\W*(?:read|see|watch|listen)\s+(?:more|also|next|this)\b\s*[:|\-–—]", re.I
)
# UTF-8 read as cp1252/latin-1 ("â€™", "Ã©", "Â "): repaired line by line when it round-trips.
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u2018-\u203a\u0152-\u0178\u02c6\u02dc]")


def clean_page(
    data: bytes,
    *,
    url: str | None = None,
    charset: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    languages: Collection[str] = (),
) -> Extracted:
    """Decode fetched bytes and clean them; see :func:`clean_html`."""
    _check_size(len(data), url=url, max_bytes=max_bytes)
    sample = data[:8192]
    if not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
        if b"\x00" in sample or controls > len(sample) * 0.05:
            where = f" {url}" if url else ""
            raise ExtractionError(f"the page{where} looks binary, not HTML")
    return clean_html(
        decode_html(data, charset=charset), url=url, max_bytes=max_bytes, languages=languages
    )


def clean_html(
    html: str,
    *,
    url: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    languages: Collection[str] = (),
    models: TextModels | None = None,
) -> Extracted:
    """Return the article in ``html``: title, body paragraphs, credit, author, published date
    (aware, UTC), canonical URL, lead image with its alt text, language and summary.

    ``languages`` (ISO 639-1 codes), when given, rejects a page that declares another language.
    ``models`` replaces the text cleaner's shipped line and headline models (benchmarks pass
    models trained without the page's site). Raises ExtractionError (one line naming the page)
    when the page is over ``max_bytes``, is empty, is not HTML, has no article text, or is in
    a language not accepted.
    """
    where = f" {url}" if url else ""
    if len(html) * 4 > max_bytes:  # cheap bound before encoding a huge string
        _check_size(len(html.encode("utf-8", errors="replace")), url=url, max_bytes=max_bytes)
    if not html.strip():
        raise ExtractionError(f"the page{where} is empty")
    html = normalise_text(html)
    tree = _parse(html, where=where)
    meta = page_meta.read(tree, url=url)
    if languages and meta.language and meta.language not in {x.lower() for x in languages}:
        accepted = ", ".join(sorted(languages))
        raise ExtractionError(
            f"the page{where} is in language {meta.language!r}, not one of {accepted} "
            "(set DIGEST_INGEST_LANGUAGES to accept it)"
        )
    shown = readings.without_hidden(tree)
    visible = lxml.html.tostring(shown, encoding="unicode")
    document = _trafilatura(visible, url=url)
    lines = _body_lines(visible, precise=document.get("text") or "", tree=shown)
    lines, caption_credit = _split_credits(lines, captions=meta.captions)
    second, scores = readings.second_opinion(tree, article=lines, url=url, models=models)
    if second is not None and readings.prefer_second(lines, second.paragraphs):
        lines, caption_credit = second.paragraphs, second.credit or caption_credit
    else:
        lines = readings.drop_confident_boilerplate(lines, scores)
        if second is not None:
            extra = [line for line in second.paragraphs if not _CROSS_LINK.match(line)]
            found = readings.recover(lines, extra)
            lines, _ = _split_credits(found, captions=meta.captions)
    if readings.count(lines) < _MIN_WORDS:
        raise ExtractionError(f"no article text found in the page{where}")
    title = meta.title or normalise_text(document.get("title") or "").strip()
    if lines and title and readings.words(lines[0]) == readings.words(title):
        lines = lines[1:]  # the headline repeated as the first paragraph
    return Extracted(
        title=title or lines[0][:200],
        body="\n\n".join(lines),
        credit=meta.credit or caption_credit,
        author=meta.author or _clean(document.get("author")),
        published=meta.published or _date(document.get("date")),
        url=meta.canonical or url,
        image_url=meta.image_url or _absolute(document.get("image"), url),
        image_alt=meta.image_alt,
        language=meta.language,
        summary=meta.summary or _clean(document.get("description")),
    )


def _check_size(size: int, *, url: str | None, max_bytes: int) -> None:
    if size > max_bytes:
        where = f" {url}" if url else ""
        raise ExtractionError(
            f"the page{where} is {size / 1e6:.1f} MB, over the limit of {max_bytes / 1e6:.1f} MB "
            "(DIGEST_MAX_PAGE_BYTES)"
        )


def _parse(html: str, *, where: str) -> lxml.html.HtmlElement:
    try:
        return lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractionError(f"the page{where} is not readable HTML ({exc})") from None


def _trafilatura(html: str, *, url: str | None) -> dict[str, Any]:
    document = trafilatura.bare_extraction(
        html, url=url, include_comments=False, with_metadata=True
    )
    if document is None:
        return {}
    found = document if isinstance(document, dict) else document.as_dict()
    return found if isinstance(found, dict) else {}


def _body_lines(html: str, *, precise: str, tree: lxml.html.HtmlElement) -> list[str]:
    """The article's paragraphs, chosen and trimmed as the module docstring says. The plain
    paragraphs come from ``tree`` less its boilerplate regions (``readings.without_boilerplate``:
    comment threads are paragraphs too)."""
    chosen = _lines(precise)
    recall = _lines(trafilatura.extract(html, include_comments=False, favor_recall=True) or "")
    if readings.count(chosen) < _RECALL_RATIO * readings.count(recall):
        chosen = recall
    try:
        pruned = readings.without_boilerplate(tree, article=readings.trigrams(chosen))
        plain = _lines(trafilatura.baseline(pruned)[1])
    except (ValueError, TypeError, etree.LxmlError):
        plain = []
    enough = readings.count(plain) >= _BASELINE_MIN_WORDS
    if enough and readings.count(chosen) < _BASELINE_RATIO * readings.count(plain):
        chosen = plain
    return _trim(_drop_repeats(chosen))


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.split("\n"):
        line = _repair(normalise_text(raw)).strip()
        if _WORD.search(line):  # table rules ("|---|") and lone symbols carry no text
            out.append(re.sub(r"[ \t]+", " ", line))
    return out


def _repair(line: str) -> str:
    if not _MOJIBAKE.search(line):
        return line
    try:
        return line.encode("cp1252").decode("utf-8")
    except UnicodeError:
        return line


def _drop_repeats(lines: list[str]) -> list[str]:
    """Keep the first of identical longer paragraphs (pages that render a block twice)."""
    seen: set[str] = set()
    out = []
    for line in lines:
        key = " ".join(readings.words(line))
        if key in seen and len(key.split()) >= _REPEAT_MIN_WORDS:
            continue
        seen.add(key)
        out.append(line)
    return out


def _trim(lines: list[str]) -> list[str]:
    """Drop cross-link lines, and cut at a section marker near the end of the text."""
    total = readings.count(lines) or 1
    remaining = total
    out: list[str] = []
    for line in lines:
        words = len(_WORD.findall(line))
        if (
            words <= _MARKER_MAX_WORDS
            and _SECTION_MARKER.match(line)
            and remaining < _TAIL_SHARE * total
        ):
            break
        remaining -= words
        if not _CROSS_LINK.match(line):
            out.append(line)
    return out


_CREDIT_LINE = re.compile(
    r"^\W*(?:(?:photo(?:graph)?s?|image|picture|illustration|video|credit|source|foto)"
    r"(?:\s+(?:by|credit|courtesy(?:\s+of)?))?\s*[:©]|©|\(c\)\s)",
    re.IGNORECASE,
)


def _split_credits(lines: list[str], *, captions: Collection[str]) -> tuple[list[str], str | None]:
    """Move photo credits and the page's figure captions out of the body."""
    caption_keys = {" ".join(readings.words(c)) for c in captions if c.strip()}
    credit = None
    body = []
    for line in lines:
        if len(_WORD.findall(line)) <= 20 and _CREDIT_LINE.match(line):
            credit = credit or page_meta.credit_text(line)
            continue
        if " ".join(readings.words(line)) in caption_keys:
            continue
        body.append(line)
    return body, credit


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = normalise_text(value).strip()
    return text or None


def _date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _absolute(value: object, base: str | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return urljoin(base or "", value.strip())


def fragment_paragraphs(html: str) -> list[str]:
    """The paragraphs of an HTML fragment (a feed item's content): one per block element,
    whitespace collapsed, empty ones dropped. Never raises."""
    if not html.strip():
        return []
    if "<" not in html:
        return [p for p in (re.sub(r"\s+", " ", b).strip() for b in html.split("\n\n")) if p]
    try:
        root = lxml.html.fragment_fromstring(normalise_text(html), create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    return page_meta.block_texts(root)
