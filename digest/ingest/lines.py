"""Numeric features of the lines of a flattened page, for the learned line classifier.

Every feature is a number computed from the line's shape, its place on the page and its
neighbours. The only words involved are generic families (stopwords; call-to-action words such
as subscribe, donate, cookie, share; photo-credit words) that describe boilerplate in general,
never the phrases of one outlet. :data:`FEATURE_NAMES` fixes the order the shipped model expects.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


# Function words of the languages WCXB-style pages are mostly written in. Prose has many of
# them; menus, tags and credits have few.
def _bag(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _bag(
    """a about after all also an and any are as at be because been but by can could did do does
    for from had has have he her his how i if in into is it its just more most my no not of on one
    only or other our out over she so some such than that the their them then there these they
    this those through to up was we were what when where which while who will with would you your
    der die das und ist nicht mit den von zu ein eine auf für sich des dem im auch es le la les et
    un une des du est que qui dans pour pas sur au el los las y en del por con para es una lo il di
    che è per non della het een van de en niet op dat"""
)

# Generic call-to-action families: words that mark boilerplate on any site.
FAMILIES: dict[str, frozenset[str]] = {
    "appeal": _bag(
        "support donate donation donations contribute contribution contributions membership member "
        "members patron patreon fund funding independent journalism readers reader"
    ),
    "subscribe": _bag(
        "subscribe subscribed subscriber subscribers subscription newsletter newsletters inbox "
        "signup sign mailbox weekly daily digest email emails alerts"
    ),
    "legal": _bag(
        "cookie cookies privacy policy consent terms conditions gdpr rights reserved copyright "
        "trademark disclaimer accept"
    ),
    "share": _bag(
        "share shares shared facebook twitter x linkedin whatsapp pinterest reddit telegram email "
        "print copy link tweet instagram youtube tiktok follow"
    ),
    "related": _bag(
        "related read more recommended popular trending latest also see next previous prev "
        "stories articles posts featured"
    ),
    "comment": _bag("comment comments reply replies leave respond discussion"),
    "account": _bag("login log sign register account password username cart checkout"),
    "nav": _bag(
        "home menu search navigation skip content contact about categories category tags tag "
        "archive archives sitemap toggle close open back top"
    ),
    "payment": _bag(
        "monthly annual annually once continue payment payments paypal card visa price per month "
        "year free trial upgrade offer"
    ),
    "ad": _bag("advertisement advertising sponsored ad ads promoted partner affiliate"),
    "second": _bag("you your you're yours we us our we're"),
    "credit": _bag(
        "photo photos photograph image images credit credits getty reuters afp ap epa tass "
        "shutterstock istock courtesy illustration via alamy pool file"
    ),
}
_FAMILY_NAMES = tuple(FAMILIES)
# Markers: short lines whose words belong to these families usually open a non-article section.
_MARKER_FAMILIES = ("comment", "related", "share", "subscribe", "appeal")

_CREDIT_LEAD = (
    r"^(?:(?:photo|image|picture|foto|credit|illustration|source)s?\s*(?:credit)?\s*[:/|-]"
    r"|©|\(c\)|copyright\b)"
)
_CREDIT_AGENCY = (
    r"\b(?:getty images|shutterstock|istock|alamy|ap photo|afp|reuters|epa|tass|courtesy of)\b"
)
_CREDIT_SLASH = r"^[\w .'’-]{3,40}(?:\s/\s[\w .'’-]{2,30}){1,3}$"
_CREDIT_SHAPE = re.compile(f"{_CREDIT_LEAD}|{_CREDIT_AGENCY}|{_CREDIT_SLASH}", re.IGNORECASE)
_CREDIT_START = re.compile(f"{_CREDIT_LEAD}|{_CREDIT_SLASH}", re.IGNORECASE)
_DATE = re.compile(
    r"\b(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}|"
    r"\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)",
    re.IGNORECASE,
)
_URLISH = re.compile(r"https?://|www\.|\.com\b|@\w", re.IGNORECASE)
_SENTENCE_END = re.compile(r"""[.!?…][)"'”’»]*$""")
_BULLET = re.compile(r"^(?:[-•*·▪►–—]|\d{1,2}[.)]\s)")
_LONG = 12  # words: a line at least this long is "long" (prose-like)


def words(line: str) -> list[str]:
    """Return the words of a line (letters and digits, inner apostrophes kept)."""
    return _WORD.findall(line)


def is_marker(line: str) -> bool:
    """Return True for a short line that opens a non-article section (share, related,
    newsletter, comments, an appeal for support)."""
    ws = [w.lower() for w in words(line)]
    return 0 < len(ws) <= 8 and any(w in FAMILIES[f] for f in _MARKER_FAMILIES for w in ws)


def credit_shaped(line: str) -> bool:
    """Return True when a short line carries credit words or shapes anywhere (a feature)."""
    return len(line) <= 120 and bool(_CREDIT_SHAPE.search(line.strip()))


def looks_like_credit(line: str) -> bool:
    """Return True when a line is a photo credit: ``Photo: …``, ``© …``, ``Name / AGENCY``, or a
    short line naming a picture agency that is not a sentence (``Getty Images``).

    A sentence that merely mentions an agency ("…, Reuters reported.") is not a credit.
    """
    line = line.strip()
    if len(line) > 120 or not _CREDIT_SHAPE.search(line):
        return False
    if _CREDIT_START.search(line):
        return True
    return len(words(line)) <= 8 and not _SENTENCE_END.search(line)


def _own(line: str) -> list[float]:
    """Features of the line alone."""
    ws = words(line)
    n = len(ws)
    lower = [w.lower() for w in ws]
    chars = len(line)
    letters = sum(c.isalpha() for c in line) or 1
    caps = sum(1 for w in ws if w[:1].isupper())
    counts = Counter(lower)
    fam = [sum(counts[w] for w in FAMILIES[name]) for name in _FAMILY_NAMES]
    stripped = line.strip()
    return [
        float(n),
        math.log1p(chars),
        float(bool(_SENTENCE_END.search(stripped))),
        float(stripped.endswith(":")),
        float(stripped.endswith("?")),
        float(stripped.endswith("!")),
        caps / n if n else 0.0,
        sum(1 for w in ws if w.isupper() and len(w) > 1) / n if n else 0.0,
        sum(c.isdigit() for c in line) / (chars or 1),
        sum(not c.isalnum() and not c.isspace() for c in line) / (chars or 1),
        line.count(",") / (n or 1),
        sum(1 for w in lower if w in STOPWORDS) / n if n else 0.0,
        sum(len(w) for w in ws) / n if n else 0.0,
        float(bool(_URLISH.search(line))),
        float(line.count("|") + line.count("»") + line.count("›") + line.count("•")),
        float(bool(_BULLET.match(stripped))),
        float(bool(_DATE.search(line))),
        float(credit_shaped(line)),
        float(lower[:1] == ["by"]),
        float(stripped[:1] in "\"“'‘"),
        letters / (chars or 1),
        *(float(x) for x in fam),
        *(x / n if n else 0.0 for x in fam),
        float(sum(fam) > 0 and n <= 6),
    ]


_OWN_NAMES = [
    "words", "log_chars", "ends_sentence", "ends_colon", "ends_question", "ends_bang",
    "capitalised", "upper", "digits", "punct", "commas", "stopwords", "word_len", "urlish",
    "separators", "bullet", "date", "credit", "by_line", "opens_quote", "letters",
    *(f"fam_{f}" for f in _FAMILY_NAMES),
    *(f"fam_{f}_share" for f in _FAMILY_NAMES),
    "short_cta",
]  # fmt: skip
_NEIGHBOUR_PICK = tuple(
    _OWN_NAMES.index(name) for name in ("words", "ends_sentence", "stopwords", "fam_second_share")
)
_OFFSETS = (-3, -2, -1, 1, 2, 3)
_WINDOWS = (2, 5)
_CAP = 30.0  # distances beyond this many lines are all "far"


def _best_block(lengths: Sequence[int]) -> tuple[int, int]:
    """Return the [start, end] of the contiguous run of lines where long lines most outweigh
    short ones (maximum subarray over +words for long lines, -penalty for short ones)."""
    best, best_span, run, start = 0.0, (0, -1), 0.0, 0
    for i, n in enumerate(lengths):
        score = float(n) if n >= _LONG else -4.0 - n / 2
        if run <= 0:
            run, start = score, i
        else:
            run += score
        if run > best:
            best, best_span = run, (start, i)
    return best_span


def _marker_distances(is_marker: Sequence[bool]) -> tuple[list[float], list[float]]:
    """Return, per line, the distance to the nearest marker line above and below (capped)."""
    n = len(is_marker)
    above, below = [_CAP] * n, [_CAP] * n
    last = None
    for i in range(n):
        if last is not None:
            above[i] = min(_CAP, float(i - last))
        if is_marker[i]:
            last = i
    last = None
    for i in range(n - 1, -1, -1):
        if last is not None:
            below[i] = min(_CAP, float(last - i))
        if is_marker[i]:
            last = i
    return above, below


def features(lines: Sequence[str]) -> list[list[float]]:
    """Return one feature vector per line, in :data:`FEATURE_NAMES` order."""
    n = len(lines)
    if n == 0:
        return []
    own = [_own(line) for line in lines]
    lengths = [int(f[0]) for f in own]
    total_words = sum(lengths) or 1
    longest = max(range(n), key=lambda i: lengths[i])
    start, end = _best_block(lengths)
    repeats = Counter(line.strip().lower() for line in lines)
    markers = {
        fam: [lengths[i] <= 8 and own[i][_OWN_NAMES.index(f"fam_{fam}")] > 0 for i in range(n)]
        for fam in _MARKER_FAMILIES
    }
    distances = {fam: _marker_distances(flags) for fam, flags in markers.items()}
    cumulative, seen = [], 0
    for count in lengths:
        cumulative.append(seen / total_words)
        seen += count
    second = _OWN_NAMES.index("fam_second_share")
    appeal = _OWN_NAMES.index("fam_appeal_share")
    rows: list[list[float]] = []
    for i in range(n):
        row = list(own[i])
        row += [
            i / n,
            float(min(i, 200)),
            float(min(n - 1 - i, 200)),
            math.log1p(n),
            cumulative[i],
            (i - longest) / n,
            float(start <= i <= end),
            (i - start) / n,
            (i - end) / n,
            float(repeats[lines[i].strip().lower()] - 1),
            lengths[i] / (max(lengths) or 1),
        ]
        for fam in _MARKER_FAMILIES:
            up, down = distances[fam]
            row += [up[i], down[i]]
        for off in _OFFSETS:
            j = i + off
            if 0 <= j < n:
                row += [own[j][k] for k in _NEIGHBOUR_PICK] + [1.0]
            else:
                row += [0.0] * len(_NEIGHBOUR_PICK) + [0.0]
        for w in _WINDOWS:
            lo, hi = max(0, i - w), min(n, i + w + 1)
            span = lengths[lo:hi]
            row += [
                sum(span) / len(span),
                sum(1 for x in span if x >= _LONG) / len(span),
                sum(own[j][second] + own[j][appeal] for j in range(lo, hi)) / len(span),
            ]
        rows.append(row)
    return rows


FEATURE_NAMES: tuple[str, ...] = (
    *_OWN_NAMES,
    "position", "index", "from_end", "log_lines", "words_before", "from_longest", "in_block",
    "from_block_start", "from_block_end", "repeats", "length_vs_longest",
    *(f"{fam}_{way}" for fam in _MARKER_FAMILIES for way in ("above", "below")),
    *(
        f"n{off:+d}_{name}"
        for off in _OFFSETS
        for name in ("words", "ends_sentence", "stopwords", "second", "exists")
    ),
    *(f"w{w}_{name}" for w in _WINDOWS for name in ("words", "long_share", "appeal_density")),
)  # fmt: skip


# --- headline candidates ----------------------------------------------------------------------

HEADLINE_REACH = 15  # lines above the first body line that may hold the headline
HEADLINE_INTO_BODY = 3  # the headline may also be one of the first body lines


def headline_candidates(scores: Sequence[float], *, threshold: float = 0.5) -> list[int]:
    """Return the indices of lines that may be the headline: those just above the first likely
    body line and the first few lines from it."""
    if not scores:
        return []
    first = next((i for i, s in enumerate(scores) if s >= threshold), len(scores))
    return list(range(max(0, first - HEADLINE_REACH), min(len(scores), first + HEADLINE_INTO_BODY)))


def headline_features(
    lines: Sequence[str], scores: Sequence[float], candidates: Sequence[int]
) -> list[list[float]]:
    """Return one feature row per candidate, in :data:`HEADLINE_FEATURE_NAMES` order."""
    if not candidates:
        return []
    n = len(lines)
    first = next((i for i in candidates if scores[i] >= 0.5), candidates[-1])
    repeats = Counter(" ".join(words(line.lower())) for line in lines)
    lengths = [len(words(lines[i])) for i in candidates]
    longest = max(lengths) or 1
    rows = []
    for rank, i in enumerate(candidates):
        row = _own(lines[i])
        row += [
            float(i - first),
            float(rank),
            float(len(candidates) - 1 - rank),
            i / n,
            scores[i],
            scores[i - 1] if i > 0 else 0.0,
            scores[i + 1] if i + 1 < n else 0.0,
            float(repeats[" ".join(words(lines[i].lower()))] - 1),
            lengths[rank] / longest,
            float(is_marker(lines[i])),
            float(" | " in lines[i] or " - " in lines[i] or " – " in lines[i]),
        ]
        rows.append(row)
    return rows


HEADLINE_FEATURE_NAMES: tuple[str, ...] = (
    *_OWN_NAMES,
    "from_body", "rank", "rank_from_end", "position", "score", "score_above", "score_below",
    "repeats", "length_vs_longest", "marker", "site_separator",
)  # fmt: skip
