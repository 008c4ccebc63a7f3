"""The benchmark's own measuring tools are right (ROUGE by hand, baselines, resampling)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.selection import lead_1, resample, rouge, rouge_l, rouge_n, rouge_tokens, textrank_1
from digest.select import Candidate


def test_rouge_matches_hand_counts() -> None:
    cand, ref = rouge_tokens("The cat sat."), rouge_tokens("the cat ran")
    assert rouge_n(cand, ref, 1) == pytest.approx(2 / 3)  # 2 of 3 unigrams either way
    assert rouge_n(cand, ref, 2) == pytest.approx(1 / 2)  # "the cat" of 2 bigrams
    assert rouge_l(cand, ref) == pytest.approx(2 / 3)  # LCS "the cat"


def test_rouge_l_follows_order_not_just_overlap() -> None:
    ref = rouge_tokens("a b c d")
    assert rouge_l(rouge_tokens("d c b a"), ref) == pytest.approx(1 / 4)
    assert rouge_n(rouge_tokens("d c b a"), ref, 1) == pytest.approx(1.0)


def test_rouge_of_nothing_is_zero() -> None:
    assert rouge("", "the cat") == (0.0, 0.0, 0.0)


def test_lead_1_is_the_naive_first_sentence() -> None:
    assert lead_1("U.S. officials met. Then left.") == "U.S."
    assert lead_1("One sentence only") == "One sentence only"


def test_textrank_picks_the_sentence_that_shares_most_words() -> None:
    body = (
        "Rain fell. The council voted on the bridge budget. The bridge budget vote split the "
        "council. Council members debated the bridge budget for hours."
    )
    assert "bridge budget" in textrank_1(body)


def test_resampling_gives_fresh_ids_and_keeps_outlets() -> None:
    when = datetime(2017, 3, 15, 12, tzinfo=UTC)
    cands = [
        Candidate(article_id=k, title=f"t{k}", body="b", url="u", source=f"s{k % 3}",
                  published=when, first_seen=when)
        for k in range(1, 11)
    ]  # fmt: skip
    out = resample(cands, n=50)
    assert [c.article_id for c in out] == list(range(1, 51))
    assert {c.source for c in out} <= {"s0", "s1", "s2"}
    assert all(abs((c.published or when) - when).total_seconds() <= 72 * 3600 for c in out)
    assert resample(cands, n=50) == out  # seeded: the same every run
