"""Blurbs: the first sentences of an article, cut at a sentence boundary within a budget.

On news the lead is the summary the writer already made, and it beats extractive rankers like
TextRank (``bench/selection.py`` measures both against the outlets' own subtitles). We take the
lead after removing a wire dateline ("MOSCOW, March 13. /TASS/.", "(CNN)", "LONDON (AP) —"),
then add sentences while the blurb is still short and the next one fits: 1 to 3 sentences,
never cut mid-word. A first sentence longer than the whole budget is cut at a word boundary and
ends with an ellipsis, the one case where a blurb does not end at a sentence boundary.
"""

from __future__ import annotations

import re

MAX_SENTENCES = 3
ELLIPSIS = "\u2026"

# Words that end with a full stop without ending a sentence. Compared lower-case, without the
# final dot; dotted acronyms (U.S., U.N., a.m.) are recognised by shape instead.
_ABBREVIATIONS_TEXT = """
    mr mrs ms dr prof sen rep gov gen col lt sgt capt cmdr adm maj st jr sr rev hon pres
    supt insp det atty inc corp co ltd plc bros llc vs etc al approx dept univ est fig vol no nos
    jan feb mar apr jun jul aug sep sept oct nov dec mt ft ave blvd rd"""
ABBREVIATIONS = frozenset(_ABBREVIATIONS_TEXT.split())
# After a dotted acronym ("U.S."), these words mean a new sentence did start.
_SENTENCE_STARTERS_TEXT = """
    the a an he she it they we i his her its their this that these those but and so yet
    in on at for if when while after before as there here what who why how"""
SENTENCE_STARTERS = frozenset(_SENTENCE_STARTERS_TEXT.split())

_BOUNDARY = re.compile(r"""[.!?]+["'\u201d\u2019)\]]*(?=\s+["'\u201c\u2018(\[]?[A-Z0-9])""")
_DOTTED = re.compile(r"(?:[A-Za-z]\.){2,}$")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_DATELINES = (
    # "MOSCOW, March 13. /TASS/."
    re.compile(r"^[A-Z][A-Za-z .'-]*,\s+[A-Z][a-z]+\.?\s+\d{1,2}\.?\s*/[A-Z][A-Za-z-]*/\.?\s*"),
    # "(CNN)", "(Reuters Health) - "
    re.compile(r"^\([A-Z][A-Za-z .]{1,30}\)\s*(?:[-\u2013\u2014]+\s*)?"),
    # "WASHINGTON (AP) — ", "LONDON — ", "BADEN BADEN, Germany, March 18 (Reuters) - "
    re.compile(
        r"^[A-Z][A-Z .'-]{2,}(?:,\s*[A-Z][A-Za-z0-9 .]+){0,2}\s*(?:\([A-Za-z .]+\)\s*)?"
        r"(?:--|[-\u2013\u2014])\s+"
    ),
)


def normalise_space(text: str) -> str:
    """One space between words, no leading or trailing space."""
    return " ".join(text.split())


def strip_dateline(text: str) -> str:
    """``text`` without a wire-style dateline at its start (unchanged when there is none)."""
    for pattern in _DATELINES:
        stripped = pattern.sub("", text, count=1)
        if stripped != text and stripped:
            return stripped
    return text


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (whitespace normalised), keeping abbreviations like "Mr." and
    "U.S." inside their sentence."""
    text = normalise_space(text)
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if match.group().startswith(".") and not _ends_sentence(text, match.start(), end):
            continue
        sentence = text[start:end].strip()
        if sentence:
            out.append(sentence)
        start = end
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _ends_sentence(text: str, dot: int, end: int) -> bool:
    word_match = _WORD_BEFORE.search(text[:dot])
    if word_match is None:
        return True  # after a number or a quote: "rose 3.5 per cent. The ..."
    word = word_match.group(1)
    if len(word) == 1 and word.isupper():
        return False  # an initial: "John F. Kennedy"
    if word.lower().rstrip(".") in ABBREVIATIONS:
        return False
    if _DOTTED.search(word + "."):
        following = text[end:].lstrip().split(" ", 1)[0].strip("\"'\u201c(").lower()
        return following in SENTENCE_STARTERS
    return True


def cut_at_word(text: str, *, limit: int) -> str:
    """``text`` if it fits ``limit`` characters, else its longest word-boundary prefix + "…"."""
    if len(text) <= limit:
        return text
    room = text[: max(limit - 1, 0)]
    cut = room.rsplit(" ", 1)[0] if " " in room else ""
    cut = cut.rstrip(" ,;:-\u2013\u2014")
    return f"{cut}{ELLIPSIS}" if cut else ""


def lead_sentences(body: str) -> list[str]:
    """The body's sentences from its first real paragraph on, dateline removed.

    Paragraphs are separated by a blank line; leading paragraphs without a sentence of at
    least four words (bylines, "Advertisement", photo credits that slipped through) are skipped.
    """
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    for index, paragraph in enumerate(paragraphs):
        if len(paragraph.split()) >= 4:
            text = strip_dateline(normalise_space(" ".join(paragraphs[index:])))
            return split_sentences(text)
    return split_sentences(strip_dateline(normalise_space(body)))


def make_blurb(
    body: str,
    *,
    budget: int,
    summary: str | None = None,
    fill_to: float = 0.3,
    max_sentences: int = MAX_SENTENCES,
) -> str:
    """A 1-3 sentence blurb of at most ``budget`` characters, taken from the lead.

    Sentences are added while the blurb is shorter than ``fill_to`` x budget and the next
    sentence still fits. An empty body falls back to ``summary``; nothing at all gives "".
    """
    sentences = lead_sentences(body) or (split_sentences(summary) if summary else [])
    if not sentences:
        return ""
    blurb = sentences[0]
    if len(blurb) > budget:
        return cut_at_word(blurb, limit=budget)
    for sentence in sentences[1:max_sentences]:
        if len(blurb) >= fill_to * budget or len(blurb) + 1 + len(sentence) > budget:
            break
        blurb = f"{blurb} {sentence}"
    return blurb
