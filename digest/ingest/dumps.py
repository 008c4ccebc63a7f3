"""Raw text dumps: cleaning flattened page text into an article, and reading dump files.

:func:`clean_text` takes the text a scraper left after stripping the markup (one block per
line), scores every line with the shipped line classifier (:mod:`digest.ingest.textmodel`),
keeps the body lines in order, recovers the headline above them and moves the photo credit out.
With a :class:`~digest.ingest.boilerplate.BoilerplateMemory` it also drops lines the same source
printed under several earlier articles, and counts this article's lines.

:func:`read_dump` reads ``.txt`` (one article), ``.jsonl`` and ``.csv`` (one article per
record) files.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from digest.errors import ExtractionError, InputError
from digest.ingest.boilerplate import BoilerplateMemory
from digest.ingest.extract import Extracted, decode, normalise
from digest.ingest.lines import (
    FAMILIES,
    features,
    headline_candidates,
    headline_features,
    looks_like_credit,
    words,
)
from digest.ingest.runs import drop_appeals, drop_strays
from digest.ingest.textmodel import LineModel, default_headline_model, default_model

# Families whose words, in a short line, mark it as a prompt rather than a headline.
_PROMPT_FAMILIES = ("appeal", "subscribe", "legal", "share", "account", "payment", "ad", "comment")
_PROMPT_WORDS = frozenset().union(*(FAMILIES[f] for f in _PROMPT_FAMILIES))
_HEADLINE_MAX_WORDS = 30  # a longer line is a paragraph, however the scorer rates it


def text_lines(text: str) -> list[str]:
    """Return the non-blank lines of a text, stripped, in order."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def clean_text(
    text: str,
    *,
    url: str | None = None,
    memory: BoilerplateMemory | None = None,
    model: LineModel | None = None,
    headline: LineModel | None = None,
) -> Extracted:
    """Return the article in a flattened page: headline, body paragraphs, photo credit.

    ``model`` and ``headline`` replace the shipped line and headline classifiers (benchmarks
    pass models retrained without the page's site).

    Every returned body paragraph is one input line, in input order. Raises ExtractionError
    when no line looks like article text.
    """
    lines = text_lines(text)
    if not lines:
        raise ExtractionError("the text is empty; nothing to clean")
    model = model or default_model()
    scores = model.scores(features(lines))
    return assemble(
        lines, scores, threshold=model.threshold_body, url=url, memory=memory, headline=headline
    )


def assemble(
    lines: Sequence[str],
    scores: Sequence[float],
    *,
    threshold: float = 0.5,
    url: str | None = None,
    memory: BoilerplateMemory | None = None,
    headline: LineModel | None = None,
) -> Extracted:
    """Build the article from the lines and their body probabilities: keep likely body lines,
    drop appeals outside the main text and lines the source repeats, recover the headline and
    move the credit out. Raises ExtractionError when no body line is left."""
    keep = drop_strays(lines, drop_appeals(lines, [score >= threshold for score in scores]))
    if memory is not None:
        keep = _forget_known(lines, keep, memory)
        memory.observe(lines)
    if not any(keep):
        raise ExtractionError("no line of the text reads like article text")
    title_at = _headline(lines, scores, threshold=threshold, model=headline)
    credit_at = _credit(lines, keep, start=0 if title_at is None else title_at + 1)
    body = [
        line
        for i, line in enumerate(lines)
        if keep[i] and i != title_at and i != credit_at and not looks_like_credit(line)
    ]
    if not body:
        raise ExtractionError("no line of the text reads like article text")
    title = lines[title_at] if title_at is not None else _fallback_title(body[0])
    return Extracted(
        title=title,
        body="\n\n".join(body),
        credit=lines[credit_at] if credit_at is not None else None,
        url=url,
    )


def clean_body(body: str, *, memory: BoilerplateMemory | None = None) -> tuple[str, str | None]:
    """Clean a body that a CMS export already separated from its page: normalised paragraphs
    without short prompts (share, subscribe, cookie lines), photo credits or lines the source
    repeats under every article. Returns ``(body, credit)``; the body may come back empty."""
    lines = text_lines(body)
    credit = next((line for line in lines if looks_like_credit(line)), None)
    kept = [
        line
        for line in lines
        if not looks_like_credit(line)
        and not _is_prompt(line)
        and not (memory is not None and memory.is_boilerplate(line))
    ]
    if memory is not None:
        memory.observe(lines)
    return "\n\n".join(kept), credit


def _forget_known(lines: Sequence[str], keep: list[bool], memory: BoilerplateMemory) -> list[bool]:
    """Drop lines the source repeats across articles, unless that would remove most of the
    body: then the "boilerplate" is this article itself, seen before under another key."""
    known = [memory.is_boilerplate(line) for line in lines]
    body_words = sum(len(words(line)) for line, k in zip(lines, keep, strict=True) if k)
    known_words = sum(
        len(words(line)) for line, k, b in zip(lines, keep, known, strict=True) if k and b
    )
    if body_words and known_words > body_words / 2:
        return keep
    return [k and not b for k, b in zip(keep, known, strict=True)]


def _is_prompt(line: str) -> bool:
    ws = [w.lower() for w in words(line)]
    return 0 < len(ws) <= 8 and any(w in _PROMPT_WORDS for w in ws)


def _headline(
    lines: Sequence[str],
    scores: Sequence[float],
    *,
    threshold: float,
    model: LineModel | None = None,
) -> int | None:
    """Return the index of the headline: the candidate near the top of the body that the
    shipped headline scorer rates highest (never a credit, a prompt or a long paragraph)."""
    candidates = headline_candidates(scores, threshold=threshold)
    model = model or default_headline_model()
    rated = model.scores(headline_features(lines, scores, candidates))
    allowed = [
        (rating, i)
        for rating, i in zip(rated, candidates, strict=True)
        if len(words(lines[i])) <= _HEADLINE_MAX_WORDS
        and not looks_like_credit(lines[i])
        and not _is_prompt(lines[i])
    ]
    return max(allowed)[1] if allowed else None


def _credit(lines: Sequence[str], keep: Sequence[bool], *, start: int) -> int | None:
    """Return the index of the first credit-shaped line from ``start`` to the last body line."""
    last = len(keep) - 1 - list(reversed(keep)).index(True)
    for i in range(start, last + 1):
        if looks_like_credit(lines[i]):
            return i
    return None


def _fallback_title(paragraph: str) -> str:
    """A title cut from the first paragraph at a word boundary, for pages without a headline."""
    if len(paragraph) <= 90:
        return paragraph
    return re.sub(r"\s+\S*$", "", paragraph[:90]) + "…"


# --- dump files -------------------------------------------------------------------------------

_FIELDS = {
    "title": ("title", "headline", "name"),
    "text": ("text", "body", "content", "article", "full_text"),
    "url": ("url", "link", "href", "canonical_url"),
    "published": ("published", "published_at", "date", "pubdate", "datetime", "time"),
    "author": ("author", "byline", "authors", "creator"),
    "source": ("source", "site", "outlet", "publisher"),
    "summary": ("summary", "description", "teaser", "subtitle", "dek"),
}


@dataclass(frozen=True, slots=True)
class DumpRecord:
    """One record of a dump file: an article, or the one-line reason it was unusable.

    ``line`` is the 1-based line of the record (JSONL line, CSV row's first line; 1 for .txt).
    """

    path: Path
    line: int
    article: Extracted | None = None
    error: str | None = None
    source: str | None = None


def read_dump(path: Path | str, *, memory: BoilerplateMemory | None = None) -> Iterator[DumpRecord]:
    """Yield the records of a ``.txt`` (one article), ``.jsonl`` or ``.csv`` dump.

    Bad records do not stop the file: each becomes a DumpRecord whose ``error`` names the file,
    the line and the problem; the caller collects them. ``memory`` (learned boilerplate) is
    used and updated for every record, so pass it only for a dump of one source. Raises
    InputError only when the file itself cannot be read or its kind is unknown.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the dump ({exc.strerror or exc})") from exc
    if suffix in (".txt", ".text"):
        yield _text_record(path, data, memory=memory)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _jsonl(path, data, memory=memory)
    elif suffix == ".csv":
        yield from _csv(path, data, memory=memory)
    else:
        raise InputError(f"{path}: unknown dump kind; use .txt, .jsonl or .csv")


def _text_record(path: Path, data: bytes, *, memory: BoilerplateMemory | None) -> DumpRecord:
    try:
        text = normalise(decode(data))
        return DumpRecord(path, 1, article=clean_text(text, memory=memory))
    except InputError as exc:
        return DumpRecord(path, 1, error=f"{path}:1: {exc}")


def _jsonl(path: Path, data: bytes, *, memory: BoilerplateMemory | None) -> Iterator[DumpRecord]:
    try:
        text = decode(data)
    except InputError as exc:
        yield DumpRecord(path, 1, error=f"{path}: {exc}")
        return
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            fields = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield DumpRecord(path, number, error=f"{path}:{number}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(fields, dict):
            yield DumpRecord(path, number, error=f"{path}:{number}: expected a JSON object")
            continue
        yield _record(path, number, fields, memory=memory)


def _csv(path: Path, data: bytes, *, memory: BoilerplateMemory | None) -> Iterator[DumpRecord]:
    try:
        text = decode(data)
    except InputError as exc:
        yield DumpRecord(path, 1, error=f"{path}: {exc}")
        return
    csv.field_size_limit(16 * 1024 * 1024)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    row_start = 2
    try:
        for row in reader:
            yield _record(path, row_start, {k: v for k, v in row.items() if k}, memory=memory)
            row_start = reader.line_num + 1
    except csv.Error as exc:
        yield DumpRecord(path, reader.line_num, error=f"{path}:{reader.line_num}: bad CSV ({exc})")


def _field(fields: dict[str, Any], name: str) -> str | None:
    for key in _FIELDS[name]:
        for candidate in (key, key.capitalize(), key.upper()):
            value = fields.get(candidate)
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value if v)
            if value not in (None, ""):
                return normalise(str(value)).strip() or None
    return None


def _record(
    path: Path, number: int, fields: dict[str, Any], *, memory: BoilerplateMemory | None
) -> DumpRecord:
    where = f"{path}:{number}"
    text = _field(fields, "text")
    if text is None:
        return DumpRecord(path, number, error=f"{where}: no text (expected a text/body field)")
    try:
        published = parse_published(_field(fields, "published"))
        title = _field(fields, "title")
        if title:
            body, credit = clean_body(text, memory=memory)
            if not body:
                raise ExtractionError("the body is empty after cleaning")
            article = Extracted(title=title, body=body, credit=credit)
        else:
            article = clean_text(text, memory=memory)
    except InputError as exc:
        return DumpRecord(path, number, error=f"{where}: {exc}")
    article = replace(
        article,
        url=_field(fields, "url"),
        published=published,
        author=_field(fields, "author"),
        summary=_field(fields, "summary"),
    )
    return DumpRecord(path, number, article=article, source=_field(fields, "source"))


def parse_published(value: str | None) -> datetime | None:
    """Parse an ISO 8601 or RFC 2822 date; naive times are taken as UTC.

    Raises InputError naming the value when it is neither.
    """
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            raise InputError(
                f"cannot read the date {value[:40]!r}; use ISO 8601 (2017-03-14T09:30:00Z)"
            ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
