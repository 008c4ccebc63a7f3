"""Ranking: how much a story deserves a place, as a sum of weighted parts.

Each part is a value in [0, 1] (the editor boost excepted: it is the raw boost) times its weight
from settings, and the story's score is their sum, so ``explain`` can show exactly why:

    coverage  how many distinct sources report the story, log-scaled against the week's widest
    recency   0.5 ** (age / half-life), age counted from the story's newest article to ``now``
    source    the chosen article's source weight, relative to the heaviest source this week
    boost     the largest editor boost on any of the story's articles
    quality   the chosen article's length (saturating at 400 words), image and teaser
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from digest.select.window import effective_time

if TYPE_CHECKING:
    from digest.select import Candidate

PARTS = ("coverage", "recency", "source", "boost", "quality")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "coverage": 0.45,
    "recency": 0.20,
    "source": 0.10,
    "boost": 1.00,
    "quality": 0.25,
}
FULL_LENGTH_WORDS = 400


@dataclass(frozen=True, slots=True)
class StoryScore:
    score: float
    parts: dict[str, float]  # weighted contributions; they sum to ``score``
    best: int  # index of the story's best article in the candidate list


def article_quality(candidate: Candidate) -> float:
    """0..1 from body length (full marks at 400 words), an image and a teaser."""
    words = len(candidate.body.split())
    length = min(words / FULL_LENGTH_WORDS, 1.0)
    return round(0.7 * length + 0.2 * candidate.has_image + 0.1 * bool(candidate.summary), 6)


def _preference_key(candidate: Candidate) -> tuple[float, float, float, float, int]:
    return (
        -candidate.boost,
        -candidate.source_weight,
        -article_quality(candidate),
        effective_time(candidate).timestamp(),
        candidate.article_id,
    )


def preference(candidates: Sequence[Candidate], members: Sequence[int]) -> list[int]:
    """The story's members, best first: editor boost, then source weight, then quality, then
    the earliest (the original report), then the lowest id, so ties are always broken."""
    return sorted(members, key=lambda i: _preference_key(candidates[i]))


def best_article(candidates: Sequence[Candidate], members: Sequence[int]) -> int:
    """The member to show for the story (the first in ``preference`` order)."""
    return min(members, key=lambda i: _preference_key(candidates[i]))


def score_stories(
    candidates: Sequence[Candidate],
    stories: Sequence[Sequence[int]],
    *,
    now: datetime,
    weights: Mapping[str, float],
    half_life_hours: float,
) -> list[StoryScore]:
    """One StoryScore per story, in the order given."""
    sources = [len({candidates[i].source for i in story}) for story in stories]
    widest = max(sources, default=1)
    heaviest = max((c.source_weight for c in candidates), default=1.0)
    out = []
    for story, n_sources in zip(stories, sources, strict=True):
        best = best_article(candidates, story)
        newest = max(effective_time(candidates[i]) for i in story)
        age_hours = max((now - newest).total_seconds() / 3600.0, 0.0)
        values = {
            "coverage": math.log1p(n_sources) / math.log1p(widest) if widest else 0.0,
            "recency": 0.5 ** (age_hours / half_life_hours) if half_life_hours > 0 else 1.0,
            "source": candidates[best].source_weight / heaviest if heaviest > 0 else 0.0,
            "boost": max(candidates[i].boost for i in story),
            "quality": article_quality(candidates[best]),
        }
        parts = {k: round(weights.get(k, 0.0) * values[k], 6) for k in PARTS}
        out.append(StoryScore(score=round(sum(parts.values()), 6), parts=parts, best=best))
    return out
