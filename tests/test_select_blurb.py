"""Blurbs come from the lead, 1-3 sentences, cut at sentence boundaries, never mid-word."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from digest.select.blurb import ELLIPSIS, make_blurb, split_sentences, strip_dateline


def test_abbreviations_and_initials_do_not_end_a_sentence() -> None:
    text = (
        "U.S. Rep. Jane Doe spoke to Mr. Smith on Feb. 1 at 3 p.m. in the town hall. "
        "John F. Kennedy airport was closed. She moved to the U.S. The move was brief. "
        "Prices rose 3.5 per cent. Then they fell."
    )
    assert split_sentences(text) == [
        "U.S. Rep. Jane Doe spoke to Mr. Smith on Feb. 1 at 3 p.m. in the town hall.",
        "John F. Kennedy airport was closed.",
        "She moved to the U.S.",
        "The move was brief.",
        "Prices rose 3.5 per cent.",
        "Then they fell.",
    ]


def test_quotes_and_question_marks_end_sentences() -> None:
    assert split_sentences('"Is it over?" she asked. "Yes." It was.') == [
        '"Is it over?" she asked.',
        '"Yes."',
        "It was.",
    ]


def test_wire_datelines_are_removed() -> None:
    assert strip_dateline("MOSCOW, March 13. /TASS/. Experts met.") == "Experts met."
    assert strip_dateline("(CNN)The council voted.") == "The council voted."
    assert strip_dateline("(Reuters Health) - Few teens get help.") == "Few teens get help."
    assert strip_dateline("PARIS, France, March 18 (Reuters) - Ministers met.") == "Ministers met."
    assert strip_dateline("LONDON \u2014 Rain fell.") == "Rain fell."
    assert strip_dateline("NATO said it would act.") == "NATO said it would act."


def test_the_blurb_adds_sentences_while_short_and_they_fit() -> None:
    body = (
        "The council met today. It voted to close the bridge. Repairs start in May. More follows."
    )
    assert make_blurb(body, budget=280, fill_to=0.5) == (
        "The council met today. It voted to close the bridge. Repairs start in May."
    )
    assert make_blurb(body, budget=60, fill_to=0.5) == (
        "The council met today. It voted to close the bridge."
    )
    assert make_blurb(body, budget=280, fill_to=0.0) == "The council met today."


def test_a_first_sentence_longer_than_the_budget_is_cut_at_a_word_with_an_ellipsis() -> None:
    body = "The extraordinarily long opening sentence keeps going well past any reasonable budget."
    blurb = make_blurb(body, budget=40)
    assert blurb == "The extraordinarily long opening\u2026"
    assert len(blurb) <= 40


def test_bylines_before_the_first_paragraph_are_skipped() -> None:
    body = (
        "By Jo Bloggs\n\nAdvertisement\n\nThe river burst its banks overnight. Homes were flooded."
    )
    assert make_blurb(body, budget=280).startswith("The river burst its banks overnight.")


def test_an_empty_body_falls_back_to_the_teaser() -> None:
    assert make_blurb("", budget=280, summary="A short teaser.") == "A short teaser."
    assert make_blurb("   ", budget=280) == ""


WORDS = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC.,!?'", min_size=1, max_size=14),
    min_size=1,
    max_size=80,
)


@given(WORDS, st.integers(min_value=60, max_value=400))
def test_blurbs_fit_the_budget_and_never_split_a_word(words: list[str], budget: int) -> None:
    body = " ".join(words)
    blurb = make_blurb(body, budget=budget)
    assert len(blurb) <= budget
    trailing = " ,;:-\u2013\u2014"
    whole = {w.rstrip(trailing) for w in body.split()}
    kept = blurb.removesuffix(ELLIPSIS).split(" ") if blurb else []
    # Every word of the blurb is a whole word of the body (a cut word would not be); a comma
    # or colon before the ellipsis may go.
    assert all(word.rstrip(trailing) in whole for word in kept if word)
