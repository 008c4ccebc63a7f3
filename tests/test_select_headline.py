"""Subject and preheader come from the top stories and fit what inboxes show."""

from __future__ import annotations

from digest.select.headline import preheader, subject_line


def test_the_subject_is_the_top_title_when_it_fits() -> None:
    assert subject_line(["Bridge closes for repairs", "Other"]) == "Bridge closes for repairs"


def test_a_long_subject_is_cut_at_a_word_boundary() -> None:
    title = "Council votes to close the old river bridge for eighteen months of structural repairs"
    subject = subject_line([title])
    assert len(subject) <= 70
    assert subject == "Council votes to close the old river bridge for eighteen months of\u2026"


def test_no_stories_gives_the_fallback_subject() -> None:
    assert subject_line([], fallback="The Friday Digest") == "The Friday Digest"


def test_the_preheader_names_the_next_stories_and_counts_the_rest() -> None:
    titles = ["Top", "Bridge closes", "Schools reopen", "Mayor resigns", "Rain due", "Fair opens"]
    assert (
        preheader(titles, limit=61)
        == "Also: Bridge closes; Schools reopen; Mayor resigns and 2 more"
    )
    assert preheader(titles, limit=60) == "Also: Bridge closes; Schools reopen and 3 more"


def test_the_preheader_lists_everything_when_it_fits() -> None:
    assert preheader(["Top", "Bridge closes", "Rain due"]) == "Also: Bridge closes; Rain due"


def test_a_single_story_has_no_preheader() -> None:
    assert preheader(["Only"]) == ""


def test_a_second_title_too_long_to_fit_is_shortened_not_dropped() -> None:
    long = "A very long second headline " * 6
    text = preheader(["Top", long, "Third"], limit=110)
    assert len(text) <= 110
    assert text.startswith("Also: A very long second headline")
    assert text.endswith("and 1 more")
