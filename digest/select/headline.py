"""Subject line and preheader, generated from the issue's top stories (an editor can change both).

The subject is the top story's title, shortened at a word boundary to fit (about 70 characters
is what mail clients show). The preheader, the grey line after the subject in the inbox, names
the next stories: "Also: <title>; <title> and 6 more", within about 110 characters.
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.select.blurb import cut_at_word, normalise_space

SUBJECT_CHARS = 70
PREHEADER_CHARS = 110


def subject_line(titles: Sequence[str], *, limit: int = SUBJECT_CHARS, fallback: str = "") -> str:
    """The subject: the first title, cut at a word boundary to ``limit``; ``fallback`` if none."""
    for title in titles:
        clean = normalise_space(title)
        if clean:
            return cut_at_word(clean, limit=limit)
    return cut_at_word(normalise_space(fallback), limit=limit)


def preheader(titles: Sequence[str], *, limit: int = PREHEADER_CHARS) -> str:
    """The preheader from the titles after the first: as many whole titles as fit, then a count.

    Gives "" when there is only one story. A second title too long to fit whole is shortened,
    so the preheader is never just a count.
    """
    rest = [t for t in (normalise_space(t) for t in titles[1:]) if t]
    if not rest:
        return ""
    shown: list[str] = []
    for index, title in enumerate(rest):
        remaining = len(rest) - index - 1
        candidate = _compose([*shown, title], remaining)
        if len(candidate) <= limit:
            shown.append(title)
            continue
        if not shown:
            # Nothing fits whole: shorten the first title into the space left by the count.
            overhead = len(_compose([""], remaining))
            shortened = cut_at_word(title, limit=limit - overhead)
            return _compose([shortened], remaining) if shortened else ""
        return _compose(shown, len(rest) - len(shown))
    return _compose(shown, 0)


def _compose(shown: Sequence[str], more: int) -> str:
    text = "Also: " + "; ".join(shown)
    if more:
        text += f" and {more} more"
    return text
