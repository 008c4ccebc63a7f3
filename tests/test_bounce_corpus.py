"""The Sisimai-labelled corpus, read at run time (skipped where it is absent)."""

from __future__ import annotations

import pytest

from bench.bounces import baseline, corpus_dir, load_cases, score
from digest.bounces.classify import classify

FOLDER = corpus_dir()
pytestmark = pytest.mark.skipif(
    not (FOLDER / "labels.json").exists(), reason=f"bounce corpus not at {FOLDER}"
)


@pytest.fixture(scope="module")
def results() -> tuple[dict[str, object], dict[str, object]]:
    cases = load_cases(FOLDER)
    return score(cases, classify), score(cases, baseline)


def test_no_policy_rejection_in_the_corpus_is_called_hard(
    results: tuple[dict[str, object], dict[str, object]],
) -> None:
    ours, _ = results
    assert ours["policy_as_hard"] == 0


def test_it_agrees_with_the_reference_far_more_than_the_status_digit_baseline(
    results: tuple[dict[str, object], dict[str, object]],
) -> None:
    ours, naive = results
    assert ours["agreement"] >= 0.8  # type: ignore[operator]
    assert ours["agreement"] > naive["agreement"] + 0.3  # type: ignore[operator]
