"""Runs of body lines: the main text, and the appeals and strays beside it.

The line classifier judges each line with its neighbours; some boilerplate only shows when the
kept lines are seen as runs. A donation letter reads like article text line by line but, as a
run apart from the main text, it keeps addressing the reader; a newsletter pitch right after the
last paragraph is an appeal line at the edge of the main run; a lone teaser far from the main
run is a stray.
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.ingest.lines import FAMILIES, is_marker, words

# Words of an appeal to the reader: addressing them, and asking for support or a sign-up.
_APPEAL_WORDS = FAMILIES["second"] | FAMILIES["appeal"] | FAMILIES["subscribe"]
APPEAL_DENSITY = 0.08  # share of appeal words that marks a whole separate run as an appeal
EDGE_APPEAL_DENSITY = 0.15  # share that marks one line at the edge of a run as an appeal
STRAY_SHARE = 0.05  # a run with fewer words than this share of the main run's...
STRAY_DISTANCE = 6  # ...and at least this many lines away from it is a stray
_BREAK_GAP = 3  # this many non-body lines in a row separate two runs of body lines


def runs(lines: Sequence[str], keep: Sequence[bool]) -> list[list[int]]:
    """Group the kept lines into runs: a gap of several dropped lines, or a dropped line that
    marks a section (share, related, newsletter, comments), ends a run."""
    out: list[list[int]] = []
    current: list[int] = []
    gap, marked = 0, False
    for i, kept in enumerate(keep):
        if not kept:
            gap += 1
            marked = marked or is_marker(lines[i])
            continue
        if current and (gap >= _BREAK_GAP or marked):
            out.append(current)
            current = []
        current.append(i)
        gap, marked = 0, False
    if current:
        out.append(current)
    return out


def drop_appeals(lines: Sequence[str], keep: Sequence[bool]) -> list[bool]:
    """Return ``keep`` without appeals to the reader that read like article text line by line:
    runs apart from the main run that address the reader densely (you, we, our; support,
    subscribe), and appeal lines at either edge of any run (a newsletter pitch right after the
    last paragraph)."""
    groups = runs(lines, keep)
    sizes = [sum(len(words(lines[i])) for i in group) for group in groups]
    main = max(range(len(groups)), key=lambda g: sizes[g]) if groups else -1
    out = list(keep)
    for g, group in enumerate(groups):
        if g != main and sizes[g]:
            appeal = sum(_appeal_words(lines[i])[0] for i in group)
            if appeal / sizes[g] >= APPEAL_DENSITY:
                for i in group:
                    out[i] = False
                continue
        for edge in (group, group[::-1]):
            for i in edge[:-1]:  # never the whole run
                if not _is_appeal_line(lines[i]):
                    break
                out[i] = False
    return out


def drop_strays(lines: Sequence[str], keep: Sequence[bool]) -> list[bool]:
    """Return ``keep`` without small runs far from the main run: a teaser of another story or
    a lone caption several lines away is not part of this article."""
    groups = runs(lines, keep)
    if len(groups) < 2:
        return list(keep)
    sizes = [sum(len(words(lines[i])) for i in group) for group in groups]
    main = max(range(len(groups)), key=lambda g: sizes[g])
    first, last = groups[main][0], groups[main][-1]
    out = list(keep)
    for g, group in enumerate(groups):
        away = first - group[-1] if group[-1] < first else group[0] - last
        if g != main and sizes[g] < STRAY_SHARE * sizes[main] and away >= STRAY_DISTANCE:
            for i in group:
                out[i] = False
    return out


def _appeal_words(line: str) -> tuple[int, int]:
    """Return how many words of the line address or ask the reader, and how many ask."""
    lower = [w.lower() for w in words(line)]
    asking = sum(1 for w in lower if w in FAMILIES["appeal"] or w in FAMILIES["subscribe"])
    return sum(1 for w in lower if w in _APPEAL_WORDS), asking


def _is_appeal_line(line: str) -> bool:
    n = len(words(line))
    appeal, asking = _appeal_words(line)
    return bool(n) and asking >= 1 and appeal >= 2 and appeal / n >= EDGE_APPEAL_DENSITY
