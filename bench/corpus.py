"""Reading the WCXB dev pages, flattening them the way scrapers do, and scoring cleaned text.

WCXB (web-content-extraction-benchmark) v1.0 by Murrough Foley, CC-BY-4.0. The pages are read
from ``../shared/corpus/wcxb-dev/`` (or ``$DIGEST_CORPUS_DIR/wcxb-dev``) at run time and never
copied into the repository.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lxml.html
from lxml import etree


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    domain: str
    html: str
    body: str
    title: str
    must_include: list[str]
    must_exclude: list[str]


def corpus_dir() -> Path:
    """Return the wcxb-dev folder (``$DIGEST_CORPUS_DIR`` overrides ``../shared/corpus``)."""
    root = os.environ.get("DIGEST_CORPUS_DIR")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "corpus"
    return base / "wcxb-dev"


def load_pages(*, limit: int | None = None) -> list[Page]:
    """Return the dev pages in id order (empty list when the corpus is absent)."""
    folder = corpus_dir()
    index = folder / "index.json"
    if not index.exists():
        return []
    ids: list[str] = json.loads(index.read_text())["ids"]
    return list(_read(folder, ids[:limit] if limit else ids))


def _read(folder: Path, ids: list[str]) -> Iterator[Page]:
    for page_id in ids:
        meta = json.loads((folder / f"{page_id}.json").read_text())
        html = gzip.decompress((folder / f"{page_id}.html.gz").read_bytes()).decode(
            "utf-8", "replace"
        )
        yield Page(
            id=page_id,
            domain=meta.get("domain") or page_id,
            html=html,
            body=meta.get("body") or "",
            title=meta.get("title") or "",
            must_include=list(meta.get("must_include") or []),
            must_exclude=list(meta.get("must_exclude") or []),
        )


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_BLOCK = _names(
    "address article aside blockquote body dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody "
    "thead tfoot tr td th ul option label button caption legend menu"
)
_DROP = _names("script style noscript template svg iframe head object canvas select")


def flatten_html(html: str) -> str:
    """Return the visible text of a page as a scraper leaves it: one block per line, blank lines
    between blocks, scripts and styles gone, every other line of the page kept."""
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    parts: list[str] = []
    _walk(root, parts)
    lines = (re.sub(r"\s+", " ", chunk).strip() for chunk in "".join(parts).split("\n"))
    return "\n\n".join(line for line in lines if line)


def _walk(element: etree._Element, parts: list[str]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _DROP or not isinstance(element.tag, str):
        if element.tail:
            parts.append(element.tail)
        return
    block = tag in _BLOCK
    if block:
        parts.append("\n")
    if tag == "br":
        parts.append("\n")
    if element.text:
        parts.append(element.text)
    for child in element:
        _walk(child, parts)
    if block:
        parts.append("\n")
    if element.tail:
        parts.append(element.tail)


_WORD = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def token_prf(predicted: str, truth: str) -> tuple[float, float, float]:
    """Return bag-of-words precision, recall and F1 of ``predicted`` against ``truth``."""
    got, want = Counter(tokens(predicted)), Counter(tokens(truth))
    overlap = sum((got & want).values())
    p = overlap / sum(got.values()) if got else (1.0 if not want else 0.0)
    r = overlap / sum(want.values()) if want else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _squash(text: str) -> str:
    return " ".join(tokens(text))


def snippet_share(snippets: list[str], text: str) -> float | None:
    """Return the share of snippets found in ``text`` (word-normalised), or None if none given."""
    wanted = [s for s in (_squash(s) for s in snippets) if s]
    if not wanted:
        return None
    haystack = f" {_squash(text)} "
    return sum(f" {s} " in haystack for s in wanted) / len(wanted)
