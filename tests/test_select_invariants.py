"""Properties every selection keeps, whatever the week looks like (generated weeks)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.select import Candidate, SelectionOptions, select_highlights
from digest.select.diversity import outlet_cap

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
VOCAB = [
    "bridge",
    "council",
    "river",
    "school",
    "mayor",
    "storm",
    "harbour",
    "museum",
    "tram",
    "festival",
    "budget",
    "police",
    "hospital",
    "stadium",
    "library",
    "airport",
    "election",
    "market",
    "orchestra",
    "flood",
    "strike",
    "park",
    "ferry",
]
OUTLETS = ["a.example", "b.example", "c.example", "d.example", "e.example"]


@st.composite
def weeks(draw: st.DrawFn) -> list[Candidate]:
    n = draw(st.integers(min_value=0, max_value=40))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    rng = random.Random(seed)
    out = []
    for k in range(1, n + 1):
        topic = rng.sample(VOCAB, 3)
        title = " ".join(w.capitalize() for w in topic)
        lead = f"The {topic[0]} and the {topic[1]} met over the {topic[2]} on a busy day."
        dated = rng.random() > 0.2
        when = NOW - timedelta(hours=rng.randint(1, 160))
        out.append(
            Candidate(
                article_id=k,
                title=title,
                body=f"{lead}\n\n" + " ".join(rng.choices(VOCAB, k=rng.randint(5, 300))),
                url=f"https://x.example/{k}",
                source=rng.choice(OUTLETS),
                published=when if dated else None,
                first_seen=when,
                section=rng.choice([None, "City", "Culture"]),
                boost=rng.choice([0.0, 0.0, 0.5]),
                duplicate_of=rng.randint(1, k) if k > 1 and rng.random() < 0.1 else None,
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(weeks(), st.integers(min_value=1, max_value=15), st.sampled_from([0.2, 0.3, 0.5, 1.0]))
def test_every_selection_respects_its_limits(
    cands: list[Candidate], items: int, share: float
) -> None:
    options = SelectionOptions(items=items, max_outlet_share=share, blurb_chars=120)
    selection = select_highlights(cands, now=NOW, options=options)
    ids = [p.article_id for p in selection.picks]
    assert len(ids) == len(set(ids)) <= items
    assert selection.stories <= len(cands)
    cap = outlet_cap(items=items, share=share, outlets=len({c.source for c in cands}))
    for outlet in OUTLETS:
        assert sum(p.source == outlet for p in selection.picks) <= cap
    by_id = {c.article_id: c for c in cands}
    for pick in selection.picks:
        assert len(pick.blurb) <= 120
        assert pick.undated == (by_id[pick.article_id].published is None)
        assert pick.source not in pick.also_reported_by
    assert len(selection.subject) <= 70 and len(selection.preheader) <= 110
    left = {x.article_id for x in selection.left_out}
    assert not left & set(ids)
    # The picks never hide a story that could have filled an empty slot for no reason.
    if len(ids) < items:
        assert all(x.reason != "below the cut" for x in selection.left_out)


@settings(max_examples=25, deadline=None)
@given(weeks(), st.randoms(use_true_random=False))
def test_input_order_never_changes_the_selection(
    cands: list[Candidate], rng: random.Random
) -> None:
    options = SelectionOptions(items=6)
    shuffled = list(cands)
    rng.shuffle(shuffled)
    assert select_highlights(shuffled, now=NOW, options=options) == select_highlights(
        cands, now=NOW, options=options
    )
