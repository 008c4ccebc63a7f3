"""Choosing the picks: maximal marginal relevance under an outlet cap and section quotas.

Greedy MMR: each round takes the story with the highest ``(1 - diversity) * relevance -
diversity * (its largest similarity to a story already picked)``, so the second Brexit story has
to be much better than the first to get in. A story too similar to a pick (``duplicate``) never
gets in: it is the same event that clustering kept apart. A story is shown through its best
article whose outlet is still under the cap and whose section is under its quota; when none is,
the story is left out with that reason. Pinned stories are placed first and count toward caps.
Also here: the order sections appear in, and the one-line reason a story was left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    from digest.select import Candidate

UNLIMITED = 1 << 30
DUPLICATE_SIMILARITY = 0.5  # stories this alike are the same event; never both picked
P = TypeVar("P", bound="_HasSection")


class _HasSection(Protocol):
    @property
    def section(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Option:
    """One way to show a story: through this article (index), from this outlet, in this section."""

    index: int
    outlet: str
    section: str


@dataclass(frozen=True, slots=True)
class Entry:
    story: int
    relevance: float  # the story score scaled to 0..1 over the pool
    options: tuple[Option, ...]  # the story's articles, best first
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an entry was left out: ``kind`` is duplicate, outlet_cap, section_quota or below_cut;
    ``near`` the position of the pick it resembles most (if any); ``detail`` a short phrase."""

    kind: str
    near: int | None = None
    similarity: float = 0.0
    detail: str = ""


@dataclass(slots=True)
class Outcome:
    picks: list[tuple[int, Option]] = field(default_factory=list)  # (entry position, shown via)
    reasons: dict[int, Reason] = field(default_factory=dict)  # entry position -> why left out


def outlet_cap(*, items: int, share: float, outlets: int) -> int:
    """Most picks one outlet may have: ``share`` of ``items``, rounded down, at least one —
    but never so few that ``outlets`` outlets cannot fill the issue (a publisher with one
    or two sources still gets a full issue; the cap bites where there is choice)."""
    return max(1, int(share * items + 1e-9), -(-items // max(1, outlets)))


def choose(
    entries: Sequence[Entry],
    similarity: np.ndarray,
    *,
    items: int,
    max_per_outlet: int,
    section_quota: int | None,
    diversity: float,
    duplicate: float,
) -> Outcome:
    """Pick up to ``items`` entries (more only if more are pinned); ``entries`` come best first,
    ``similarity`` is their pairwise cosine. Deterministic: ties go to the earlier entry."""
    outcome = Outcome()
    outlets: Counter[str] = Counter()
    sections: Counter[str] = Counter()
    quota = section_quota if section_quota is not None else UNLIMITED
    closest = np.zeros(len(entries))  # largest similarity to any pick so far
    nearest_pick: dict[int, int] = {}  # entry -> the pick it is closest to
    open_entries = list(range(len(entries)))

    def take(position: int, option: Option) -> None:
        outcome.picks.append((position, option))
        outlets[option.outlet] += 1
        sections[option.section] += 1
        open_entries.remove(position)
        row = similarity[position]
        better = row > closest
        for other in np.nonzero(better)[0].tolist():
            nearest_pick[other] = position
        np.maximum(closest, row, out=closest)

    for position, entry in enumerate(entries):
        if entry.pinned:
            take(position, entry.options[0])

    while len(outcome.picks) < items and open_entries:
        best: tuple[float, int, Option] | None = None
        for position in list(open_entries):
            entry = entries[position]
            if closest[position] >= duplicate:
                outcome.reasons[position] = Reason(
                    "duplicate", nearest_pick[position], float(closest[position])
                )
                open_entries.remove(position)
                continue
            option = _first_with_room(entry, outlets, sections, max_per_outlet, quota)
            if option is None:
                outcome.reasons[position] = _blocked(entry, outlets, max_per_outlet, quota)
                open_entries.remove(position)
                continue
            value = (1 - diversity) * entry.relevance - diversity * float(closest[position])
            if best is None or value > best[0] + 1e-12:
                best = (value, position, option)
        if best is None:
            break
        take(best[1], best[2])

    for position in open_entries:
        if not _has_room(entries[position], outlets, sections, max_per_outlet, quota):
            outcome.reasons[position] = _blocked(entries[position], outlets, max_per_outlet, quota)
            continue
        near = nearest_pick.get(position)
        outcome.reasons[position] = Reason(
            "below_cut", near, float(closest[position]) if near is not None else 0.0
        )
    return outcome


def _first_with_room(
    entry: Entry, outlets: Counter[str], sections: Counter[str], max_per_outlet: int, quota: int
) -> Option | None:
    for option in entry.options:
        if outlets[option.outlet] < max_per_outlet and sections[option.section] < quota:
            return option
    return None


def _has_room(
    entry: Entry, outlets: Counter[str], sections: Counter[str], max_per_outlet: int, quota: int
) -> bool:
    return _first_with_room(entry, outlets, sections, max_per_outlet, quota) is not None


def _blocked(entry: Entry, outlets: Counter[str], max_per_outlet: int, quota: int) -> Reason:
    outlet_full = sorted({o.outlet for o in entry.options if outlets[o.outlet] >= max_per_outlet})
    if len(outlet_full) == len({o.outlet for o in entry.options}):
        return Reason("outlet_cap", detail=", ".join(outlet_full))
    sections = sorted({o.section or "(none)" for o in entry.options})
    return Reason("section_quota", detail=", ".join(sections))


def in_section_order(picks: Sequence[P], order: Sequence[str]) -> list[P]:
    """Configured sections first, in their order; other sections after, by their first pick.
    Within a section the selection order stands (Python's sort is stable)."""
    first_seen: dict[str, int] = {}
    for position, pick in enumerate(picks):
        first_seen.setdefault(pick.section, position)
    rank = {name: k for k, name in enumerate(order)}
    return sorted(
        picks,
        key=lambda p: (
            (0, rank[p.section], 0) if p.section in rank else (1, 0, first_seen[p.section])
        ),
    )


def describe(reason: Reason, *, shown: Mapping[int, Candidate], held_back: bool) -> str:
    """One line on why a story is not in the issue; ``shown`` maps a pick's entry position to
    the article shown for it. ``held_back``: the story scored higher than the lowest pick, so
    only the diversity penalty kept it out."""
    near = ""
    if reason.near is not None:
        other = shown[reason.near]
        near = f"#{other.article_id} \u201c{other.title[:60]}\u201d"
    if reason.kind == "duplicate":
        return f"same story as pick {near} (similarity {reason.similarity:.2f})"
    if reason.kind == "outlet_cap":
        return f"outlet cap: {reason.detail} already at the limit"
    if reason.kind == "section_quota":
        return f"section quota full: {reason.detail}"
    if near and held_back:
        return f"held back for variety: close to pick {near} (similarity {reason.similarity:.2f})"
    if near and reason.similarity >= DUPLICATE_SIMILARITY / 2:
        return f"below the cut; close to pick {near} (similarity {reason.similarity:.2f})"
    return "below the cut"
