"""Highlight selection: the week's stories, ranked, diversified, with blurbs and a subject.

A pure core: candidates and an explicit ``now`` in, a ``Selection`` out; the same inputs always
give the same output (input order does not matter: candidates are taken in article-id order).

    candidates ─► cluster (stories) ─► score ─► MMR + outlet cap + section quota ─► picks
                                                                   └─► left out, with why
    picks ─► blurbs (lead) ─► section order ─► subject + preheader

Modules: ``window`` (the week), ``cluster`` (stories), ``score`` (ranking), ``diversity``
(choosing), ``blurb`` (sentences), ``headline`` (subject, preheader).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from digest.errors import ConfigError
from digest.select.blurb import make_blurb
from digest.select.cluster import Clustering, cluster
from digest.select.diversity import (
    DUPLICATE_SIMILARITY,
    Entry,
    Option,
    Reason,
    choose,
    describe,
    in_section_order,
    outlet_cap,
)
from digest.select.headline import preheader, subject_line
from digest.select.score import DEFAULT_WEIGHTS, PARTS, StoryScore, preference, score_stories
from digest.select.window import effective_time, week_window, within

if TYPE_CHECKING:
    from digest.settings import Settings

__all__ = [
    "Candidate",
    "Edits",
    "LeftOut",
    "Pick",
    "Selection",
    "SelectionOptions",
    "apply_edits",
    "effective_time",
    "select_highlights",
    "week_window",
    "within",
]

POOL_PER_ITEM = 8  # MMR looks at this many top stories per item wanted (and at least 60)


@dataclass(frozen=True, slots=True)
class Candidate:
    article_id: int
    title: str
    body: str  # paragraphs separated by "\n\n"
    url: str
    source: str  # outlet / source name
    published: datetime | None  # aware; None = undated
    first_seen: datetime  # aware
    section: str | None = None
    summary: str | None = None  # subtitle/teaser when known
    source_weight: float = 1.0
    boost: float = 0.0  # editor boost
    has_image: bool = False
    duplicate_of: int | None = None  # near-duplicate link from ingestion


@dataclass(frozen=True, slots=True)
class Pick:
    article_id: int
    title: str
    url: str
    source: str
    section: str
    blurb: str
    also_reported_by: tuple[str, ...]
    score: float
    score_parts: dict[str, float]
    undated: bool


@dataclass(frozen=True, slots=True)
class LeftOut:
    article_id: int
    title: str
    source: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Selection:
    picks: list[Pick]
    left_out: list[LeftOut]  # the best stories not picked, best first
    stories: int  # distinct stories among the candidates (after drops)
    subject: str
    preheader: str


@dataclass(frozen=True, slots=True)
class Edits:
    """An editor's changes to a draft; stored, and re-applied on every rebuild.

    ``pinned``/``dropped`` go to ``select_highlights``; the rest to ``apply_edits``. ``moves``
    are ``(article_id, position)`` pairs (1-based) in the order they were made.
    """

    pinned: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    moves: tuple[tuple[int, int], ...] = ()
    blurbs: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    subject: str | None = None
    preheader: str | None = None
    boosts: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({}))


def apply_edits(selection: Selection, edits: Edits) -> Selection:
    """``selection`` with the editor's blurbs, moves, subject and preheader applied.

    Edits naming an article that is no longer picked are skipped (it was dropped, or the week
    changed); a move beyond the end puts the item last.
    """
    picks = [
        replace(p, blurb=edits.blurbs[p.article_id]) if p.article_id in edits.blurbs else p
        for p in selection.picks
    ]
    for article_id, position in edits.moves:
        current = next((k for k, p in enumerate(picks) if p.article_id == article_id), None)
        if current is None:
            continue
        moved = picks.pop(current)
        picks.insert(min(max(position, 1), len(picks) + 1) - 1, moved)
    return replace(
        selection,
        picks=picks,
        subject=edits.subject if edits.subject is not None else selection.subject,
        preheader=edits.preheader if edits.preheader is not None else selection.preheader,
    )


def _default_weights() -> Mapping[str, float]:
    return MappingProxyType(dict(DEFAULT_WEIGHTS))


@dataclass(frozen=True, slots=True)
class SelectionOptions:
    items: int = 12
    max_outlet_share: float = 0.3
    blurb_chars: int = 280
    weights: Mapping[str, float] = field(default_factory=_default_weights)
    section_order: tuple[str, ...] = ()
    section_quota: int | None = None
    min_stories: int = 3
    diversity: float = 0.3  # MMR trade-off: 0 = pure score order, 1 = pure novelty
    recency_half_life_hours: float = 72.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SelectionOptions:
        """Options from the settings; ConfigError names an unknown ranking weight."""
        unknown = sorted(set(settings.selection_weights) - set(PARTS))
        if unknown:
            raise ConfigError(
                f"setting SELECTION_WEIGHTS has unknown part {unknown[0]!r}; use {', '.join(PARTS)}"
            )
        weights = {**DEFAULT_WEIGHTS, **settings.selection_weights}
        return cls(
            items=settings.items_per_issue,
            max_outlet_share=settings.max_outlet_share,
            blurb_chars=settings.blurb_chars,
            weights=MappingProxyType(weights),
            section_order=tuple(settings.section_order),
            section_quota=settings.section_quota,
            min_stories=settings.min_stories,
        )


def select_highlights(
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    options: SelectionOptions,
    pinned: Sequence[int] = (),
    dropped: Sequence[int] = (),
) -> Selection:
    """The week's picks, best stories left out (with why), story count, subject and preheader.

    ``pinned`` article ids are always picked (shown through that very article; ids not among
    the candidates are ignored). A ``dropped`` article takes its whole story out, unless another
    article of that story is pinned. Raises ValueError when two candidates share an article id
    (a bug upstream).
    """
    cands = sorted(candidates, key=lambda c: c.article_id)
    if len({c.article_id for c in cands}) != len(cands):
        raise ValueError("select_highlights got two candidates with the same article_id")
    if not cands:
        return Selection(picks=[], left_out=[], stories=0, subject="", preheader="")

    clustering = cluster(cands)
    dropped_ids = set(dropped) - set(pinned)
    pinned_ids = set(pinned)
    # A pin outranks a drop of another article of the same story: the editor wants it in.
    live = [
        sid
        for sid, story in enumerate(clustering.stories)
        if not any(cands[i].article_id in dropped_ids for i in story)
        or any(cands[i].article_id in pinned_ids for i in story)
    ]
    stories = [clustering.stories[sid] for sid in live]
    scores = score_stories(
        cands,
        stories,
        now=now,
        weights=options.weights,
        half_life_hours=options.recency_half_life_hours,
    )
    size = max(POOL_PER_ITEM * options.items, 60)
    while True:
        entries, pool = _pool(
            cands, clustering, live, scores, pinned=pinned, options=options, size=size
        )
        centroids = clustering.centroids([live[p] for p in pool])
        similarity = np.asarray((centroids @ centroids.T).todense())
        np.fill_diagonal(similarity, 0.0)
        outcome = choose(
            entries,
            similarity,
            items=options.items,
            max_per_outlet=outlet_cap(
                items=options.items,
                share=options.max_outlet_share,
                outlets=len({c.source for c in cands}),
            ),
            section_quota=options.section_quota,
            diversity=options.diversity,
            duplicate=DUPLICATE_SIMILARITY,
        )
        # Caps and quotas can exhaust the pool (a week dominated by one outlet): look deeper.
        if len(outcome.picks) >= options.items or size >= len(live):
            break
        size *= 4

    picks = [
        _pick(cands, stories[pool[position]], scores[pool[position]], option, options=options)
        for position, option in _pins_by_score(outcome.picks, entries, scores, pool)
    ]
    ordered = in_section_order(picks, options.section_order)
    shown = {position: cands[option.index] for position, option in outcome.picks}
    cut = min((p.score for p in picks), default=0.0)
    left_out = [
        _left_out(cands, entries, scores[pool[position]], reason, position, shown=shown, cut=cut)
        for position, reason in sorted(outcome.reasons.items())
    ] + _dropped(cands, clustering, dropped_ids, pinned_ids)
    titles = [p.title for p in picks]  # reading order before sections: the top story first
    return Selection(
        picks=ordered,
        left_out=left_out,
        stories=len(stories),
        subject=subject_line(titles),
        preheader=preheader(titles),
    )


def _pool(
    cands: Sequence[Candidate],
    clustering: Clustering,
    live: Sequence[int],
    scores: Sequence[StoryScore],
    *,
    pinned: Sequence[int],
    options: SelectionOptions,
    size: int,
) -> tuple[list[Entry], list[int]]:
    """MMR entries for the top stories (plus every pinned one), best first; and for each entry
    the index into ``live``/``scores`` it stands for."""
    index_of = {c.article_id: i for i, c in enumerate(cands)}
    live_of_story = {sid: k for k, sid in enumerate(live)}
    pins: dict[int, int] = {}  # live position -> pinned candidate index (first pin wins)
    for article_id in pinned:
        i = index_of.get(article_id)
        k = live_of_story.get(clustering.story_of[i]) if i is not None else None
        if i is not None and k is not None:
            pins.setdefault(k, i)
    ranked = sorted(
        range(len(live)), key=lambda k: (-scores[k].score, clustering.stories[live[k]][0])
    )
    pool = ranked[:size] + [k for k in ranked[size:] if k in pins]
    top = max((scores[k].score for k in pool), default=0.0)
    low = min((scores[k].score for k in pool), default=0.0)
    spread = top - low if top > low else 1.0
    entries = []
    for k in pool:
        members = clustering.stories[live[k]]
        order = preference(cands, members)
        if k in pins:
            order = [pins[k]] + [i for i in order if i != pins[k]]
        entries.append(
            Entry(
                story=k,
                relevance=(scores[k].score - low) / spread,
                options=tuple(
                    Option(index=i, outlet=cands[i].source, section=cands[i].section or "")
                    for i in order
                ),
                pinned=k in pins,
            )
        )
    return entries, pool


def _pins_by_score(
    chosen: Sequence[tuple[int, Option]],
    entries: Sequence[Entry],
    scores: Sequence[StoryScore],
    pool: Sequence[int],
) -> list[tuple[int, Option]]:
    """The picks in reading order: the MMR order, with each pinned story (chosen first, to be
    sure of its place) moved to where its score puts it. A pin guarantees a place, not the top."""
    ordered = [c for c in chosen if not entries[c[0]].pinned]
    for pick in (c for c in chosen if entries[c[0]].pinned):
        score = scores[pool[pick[0]]].score
        at = next(
            (k for k, c in enumerate(ordered) if scores[pool[c[0]]].score < score), len(ordered)
        )
        ordered.insert(at, pick)
    return ordered


def _pick(
    cands: Sequence[Candidate],
    members: Sequence[int],
    score: StoryScore,
    option: Option,
    *,
    options: SelectionOptions,
) -> Pick:
    shown = cands[option.index]
    others = sorted(
        (i for i in members if cands[i].source != shown.source),
        key=lambda i: (effective_time(cands[i]), cands[i].article_id),
    )
    also: list[str] = []
    for i in others:
        if cands[i].source not in also:
            also.append(cands[i].source)
    return Pick(
        article_id=shown.article_id,
        title=shown.title,
        url=shown.url,
        source=shown.source,
        section=shown.section or "",
        blurb=make_blurb(shown.body, budget=options.blurb_chars, summary=shown.summary),
        also_reported_by=tuple(also),
        score=score.score,
        score_parts=dict(score.parts),
        undated=shown.published is None,
    )


def _left_out(
    cands: Sequence[Candidate],
    entries: Sequence[Entry],
    score: StoryScore,
    reason: Reason,
    position: int,
    *,
    shown: Mapping[int, Candidate],
    cut: float,
) -> LeftOut:
    best = cands[entries[position].options[0].index]
    return LeftOut(
        article_id=best.article_id,
        title=best.title,
        source=best.source,
        score=score.score,
        reason=describe(reason, shown=shown, held_back=score.score > cut + 1e-9),
    )


def _dropped(
    cands: Sequence[Candidate],
    clustering: Clustering,
    dropped_ids: set[int],
    pinned_ids: set[int],
) -> list[LeftOut]:
    """One LeftOut per story the editor dropped, shown through the dropped article."""
    out = []
    for story in clustering.stories:
        hit = next((i for i in story if cands[i].article_id in dropped_ids), None)
        if hit is not None and not any(cands[i].article_id in pinned_ids for i in story):
            c = cands[hit]
            out.append(LeftOut(c.article_id, c.title, c.source, 0.0, "dropped by the editor"))
    return out
