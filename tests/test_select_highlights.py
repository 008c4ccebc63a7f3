"""select_highlights: stories not items, ranked, capped, diversified, deterministic.

The articles here are written for these tests (no third-party text).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import ConfigError
from digest.select import Candidate, Edits, SelectionOptions, apply_edits, select_highlights
from digest.settings import Settings

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)

# Each story: (title template, lead) variants, told by several outlets in their own words.
STORIES: dict[str, list[tuple[str, str]]] = {
    "bridge": [
        (
            "Springfield closes Elm river bridge for repairs",
            "Engineers closed the Elm river bridge in Springfield after cracks were found in its "
            "steel girders. Repairs to the bridge will take eighteen months.",
        ),
        (
            "Elm bridge in Springfield shut after girder cracks",
            "The Elm river bridge in Springfield was shut on Tuesday when engineers found cracks "
            "in the girders. Repairs could last eighteen months.",
        ),
        (
            "Cracked girders force Elm river bridge closure",
            "Cracked steel girders forced Springfield to close the Elm river bridge, engineers "
            "said. The bridge repairs are expected to take eighteen months.",
        ),
        (
            "Springfield Elm bridge closed: what drivers need to know",
            "Drivers face detours after Springfield closed the Elm river bridge because engineers "
            "found cracks in its girders.",
        ),
    ],
    "mayor": [
        (
            "Mayor Alvarez wins second term in Shelbyville",
            "Shelbyville mayor Rosa Alvarez won a second term with sixty per cent of the vote, "
            "defeating councillor Tom Berg.",
        ),
        (
            "Alvarez re-elected Shelbyville mayor, Berg concedes",
            "Councillor Tom Berg conceded as Rosa Alvarez was re-elected mayor of Shelbyville "
            "with sixty per cent of the vote.",
        ),
        (
            "Shelbyville re-elects mayor Rosa Alvarez",
            "Voters in Shelbyville re-elected mayor Rosa Alvarez, who beat Tom Berg by a wide "
            "margin.",
        ),
    ],
    "flood": [
        (
            "Flash floods hit Ogdenville orchards",
            "Flash floods swept through orchards near Ogdenville, destroying apple trees and "
            "cutting power to farms.",
        ),
        (
            "Ogdenville apple growers count flood losses",
            "Apple growers near Ogdenville are counting losses after flash floods destroyed "
            "orchards and cut power to farms.",
        ),
    ],
}
SINGLES = [
    ("Library extends opening hours", "The central library will open until nine on weekdays."),
    ("Zoo welcomes twin otters", "Two otter pups were born at the city zoo this spring."),
    ("Marathon route announced", "Runners will cross three parks on the new marathon route."),
    ("Bakery wins regional bread prize", "A family bakery won the regional sourdough award."),
    ("Tram fares frozen for a year", "The transit board froze tram fares until next spring."),
    ("Museum acquires ancient map", "The history museum bought a rare map of the coast."),
    ("Chess club hosts junior open", "Forty juniors played in the chess club's open event."),
    ("New cycle lanes painted downtown", "Crews painted protected cycle lanes on Main Street."),
    ("Choir tours northern villages", "The youth choir begins a tour of northern villages."),
    ("Farmers market moves indoors", "The winter farmers market moves to the old depot."),
]
OUTLETS = ["alpha.example", "beta.example", "gamma.example", "delta.example"]


def _body(lead: str, n: int) -> str:
    filler = " ".join(f"Detail {n} number {k} is noted here." for k in range(40))
    return f"{lead}\n\n{filler}"


def week() -> list[Candidate]:
    out: list[Candidate] = []
    next_id = 1
    for s, variants in enumerate(STORIES.values()):
        for v, (title, lead) in enumerate(variants):
            when = NOW - timedelta(days=2, hours=s + v)
            out.append(
                Candidate(
                    article_id=next_id,
                    title=title,
                    body=_body(lead, next_id),
                    url=f"https://{OUTLETS[v]}/{next_id}",
                    source=OUTLETS[v],
                    published=when,
                    first_seen=when,
                )
            )
            next_id += 1
    for k, (title, lead) in enumerate(SINGLES):
        when = NOW - timedelta(days=1, hours=k)
        out.append(
            Candidate(
                article_id=next_id,
                title=title,
                body=_body(lead, next_id),
                url=f"https://{OUTLETS[k % 4]}/{next_id}",
                source=OUTLETS[k % 4],
                published=when,
                first_seen=when,
            )
        )
        next_id += 1
    return out


def test_articles_about_one_event_become_one_pick_with_the_others_credited() -> None:
    selection = select_highlights(week(), now=NOW, options=SelectionOptions(items=12))
    bridge = [p for p in selection.picks if "Elm" in p.title]
    assert len(bridge) == 1
    assert sorted(bridge[0].also_reported_by) == sorted(o for o in OUTLETS if o != bridge[0].source)
    assert selection.stories == 3 + len(SINGLES)


def test_the_story_most_outlets_report_ranks_first() -> None:
    selection = select_highlights(week(), now=NOW, options=SelectionOptions(items=5))
    assert "Elm" in selection.picks[0].title
    assert selection.subject == selection.picks[0].title
    assert selection.picks[0].score_parts["coverage"] > selection.picks[-1].score_parts["coverage"]


def test_score_parts_add_up_to_the_score() -> None:
    for pick in select_highlights(week(), now=NOW, options=SelectionOptions()).picks:
        assert sum(pick.score_parts.values()) == pytest.approx(pick.score, abs=1e-5)
        assert set(pick.score_parts) == {"coverage", "recency", "source", "boost", "quality"}


def test_no_outlet_gets_more_than_its_share_of_the_picks() -> None:
    selection = select_highlights(week(), now=NOW, options=SelectionOptions(items=10))
    counts = {o: sum(p.source == o for p in selection.picks) for o in OUTLETS}
    assert len(selection.picks) == 10
    assert max(counts.values()) <= 3
    assert any("outlet cap" in left.reason for left in selection.left_out)


def test_a_capped_outlet_story_is_shown_through_another_outlet() -> None:
    # Boost every alpha single so alpha fills its cap before the bridge story is considered.
    cands = [
        replace(c, boost=5.0) if c.source == "alpha.example" and c.article_id > 9 else c
        for c in week()
    ]
    selection = select_highlights(cands, now=NOW, options=SelectionOptions(items=10))
    bridge = next(p for p in selection.picks if "Elm" in p.title)
    assert bridge.source != "alpha.example"
    assert "alpha.example" in bridge.also_reported_by


def test_a_boosted_single_outranks_a_widely_covered_story() -> None:
    cands = [replace(c, boost=2.0) if c.title.startswith("Zoo") else c for c in week()]
    selection = select_highlights(cands, now=NOW, options=SelectionOptions(items=5))
    assert selection.picks[0].title.startswith("Zoo")


def test_a_pinned_article_is_picked_through_that_very_article() -> None:
    cands = week()
    last_bridge_variant = 4  # the "what drivers need to know" piece
    tiny = SelectionOptions(items=2)
    selection = select_highlights(cands, now=NOW, options=tiny, pinned=[last_bridge_variant, 17])
    ids = [p.article_id for p in selection.picks]
    assert ids == [last_bridge_variant, 17]
    assert len(selection.picks) == 2


def test_pins_beyond_the_item_count_are_all_kept() -> None:
    selection = select_highlights(
        week(), now=NOW, options=SelectionOptions(items=1), pinned=[15, 16, 17]
    )
    assert [p.article_id for p in selection.picks] == [15, 16, 17]


def test_dropping_an_article_takes_its_whole_story_out_and_says_so() -> None:
    selection = select_highlights(week(), now=NOW, options=SelectionOptions(), dropped=[2])
    assert not any("Elm" in p.title for p in selection.picks)
    dropped = [left for left in selection.left_out if left.reason == "dropped by the editor"]
    assert [left.article_id for left in dropped] == [2]
    assert selection.stories == 2 + len(SINGLES)


def test_the_same_inputs_in_any_order_give_the_same_selection() -> None:
    cands = week()
    first = select_highlights(cands, now=NOW, options=SelectionOptions(items=8))
    shuffled = list(cands)
    random.Random(7).shuffle(shuffled)
    assert select_highlights(shuffled, now=NOW, options=SelectionOptions(items=8)) == first


def test_undated_articles_are_flagged() -> None:
    cands = [replace(c, published=None) if c.title.startswith("Zoo") else c for c in week()]
    selection = select_highlights(cands, now=NOW, options=SelectionOptions(items=20))
    flags = {p.title: p.undated for p in selection.picks}
    assert flags["Zoo welcomes twin otters"] is True
    assert not any(v for k, v in flags.items() if not k.startswith("Zoo"))


def test_sections_come_in_the_configured_order_and_respect_quotas() -> None:
    def section(c: Candidate) -> str:
        return "Local" if c.article_id <= 9 else ("Culture" if c.article_id % 2 else "City")

    cands = [replace(c, section=section(c)) for c in week()]
    options = SelectionOptions(
        items=8, section_order=("City", "Local"), section_quota=3, max_outlet_share=1.0
    )
    selection = select_highlights(cands, now=NOW, options=options)
    sections = [p.section for p in selection.picks]
    assert sections == sorted(sections, key=["City", "Local", "Culture"].index)
    assert max(sections.count(s) for s in set(sections)) <= 3
    assert any(left.reason.startswith("section quota") for left in selection.left_out)


def test_an_ingestion_duplicate_link_joins_articles_whatever_their_words() -> None:
    cands = week()
    zoo = next(c for c in cands if c.title.startswith("Zoo"))
    cands = [
        replace(c, duplicate_of=zoo.article_id) if c.title.startswith("Museum") else c
        for c in cands
    ]
    selection = select_highlights(cands, now=NOW, options=SelectionOptions(items=20))
    titles = [p.title for p in selection.picks]
    assert ("Zoo welcomes twin otters" in titles) != ("Museum acquires ancient map" in titles)


def test_no_candidates_give_an_empty_selection() -> None:
    selection = select_highlights([], now=NOW, options=SelectionOptions())
    assert selection.picks == [] and selection.stories == 0 and selection.subject == ""


def test_two_candidates_with_one_id_are_a_bug() -> None:
    cands = week()
    with pytest.raises(ValueError, match="same article_id"):
        select_highlights([*cands, cands[0]], now=NOW, options=SelectionOptions())


def test_options_come_from_settings_and_unknown_weights_are_refused(tmp_path: object) -> None:
    settings = Settings(
        items_per_issue=7, section_order=["City"], selection_weights={"coverage": 2.0}
    )
    options = SelectionOptions.from_settings(settings)
    assert options.items == 7 and options.section_order == ("City",)
    assert options.weights["coverage"] == 2.0 and options.weights["recency"] == 0.2
    with pytest.raises(ConfigError, match="SELECTION_WEIGHTS"):
        SelectionOptions.from_settings(Settings(selection_weights={"fame": 1.0}))


def test_editor_blurbs_moves_and_subject_are_applied_after_selection() -> None:
    options = SelectionOptions(items=5, max_outlet_share=1.0)
    selection = select_highlights(week(), now=NOW, options=options)
    ids = [p.article_id for p in selection.picks]
    edits = Edits(
        moves=((ids[3], 1), (ids[0], 99), (424242, 1)),
        blurbs={ids[1]: "Written by the editor."},
        subject="Our pick of the week",
    )
    edited = apply_edits(selection, edits)
    assert [p.article_id for p in edited.picks] == [ids[3], ids[1], ids[2], ids[4], ids[0]]
    assert next(p for p in edited.picks if p.article_id == ids[1]).blurb == "Written by the editor."
    assert edited.subject == "Our pick of the week"
    assert edited.preheader == selection.preheader
    assert apply_edits(selection, Edits()) == selection


def test_a_week_dominated_by_one_outlet_still_fills_the_issue_from_the_others() -> None:
    base = NOW - timedelta(days=1)
    busy = [
        Candidate(
            article_id=k, title=f"Item {k} about topic{k} matters{k}", body=f"Word{k} " * 50,
            url=f"https://big.example/{k}", source="big.example", published=base,
            first_seen=base, boost=1.0,
        )
        for k in range(1, 200)
    ]  # fmt: skip
    small = [
        Candidate(
            article_id=1000 + k, title=f"Small {k} story{k} thing{k}", body=f"Other{k} " * 50,
            url=f"https://s{k}.example/{k}", source=f"s{k}.example", published=base,
            first_seen=base,
        )
        for k in range(9)
    ]  # fmt: skip
    selection = select_highlights(busy + small, now=NOW, options=SelectionOptions(items=12))
    assert len(selection.picks) == 12
    assert sum(p.source == "big.example" for p in selection.picks) == 3


def test_a_pin_outranks_a_drop_of_another_article_of_the_same_story() -> None:
    selection = select_highlights(
        week(), now=NOW, options=SelectionOptions(), pinned=[3], dropped=[1]
    )
    assert 3 in [p.article_id for p in selection.picks]
    assert not any(left.reason == "dropped by the editor" for left in selection.left_out)


def test_a_publisher_with_one_source_still_gets_a_full_issue() -> None:
    from digest.select.diversity import outlet_cap

    assert outlet_cap(items=12, share=0.3, outlets=1) == 12
    assert outlet_cap(items=12, share=0.3, outlets=3) == 4
    assert outlet_cap(items=12, share=0.3, outlets=9) == 3


def test_a_single_outlet_week_fills_every_slot() -> None:
    subjects = ["harbour", "library", "council", "school", "bakery", "river", "stadium",
                "museum", "railway", "hospital", "market", "theatre", "airport",
                "park"]  # fmt: skip
    cands = [
        Candidate(
            article_id=k + 1, title=f"The {word} story of the week number {k}",
            body=f"A long report about the {word} and what changed there this week. "
                 f"People near the {word} spoke to our reporter about it.",
            url=f"https://one.example/{k}", source="one.example",
            published=NOW - timedelta(hours=k + 1), first_seen=NOW - timedelta(hours=k + 1),
        )  # fmt: skip
        for k, word in enumerate(subjects)
    ]
    selection = select_highlights(cands, now=NOW, options=SelectionOptions(items=12))
    assert len(selection.picks) == 12
