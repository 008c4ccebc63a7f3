"""Near-duplicate detection, measured on synthetic stories the test writes itself."""

from __future__ import annotations

import random

import pytest

from digest.ingest.neardup import NUM_PERM, NearDupIndex, shingles, signature, similarity

SUBJECTS = ["The council", "A regional bank", "The harbour authority", "Local farmers",
            "The university", "A rail operator", "The health board", "Two ministers",
            "The museum", "A software firm", "The fire service", "Residents"]  # fmt: skip
VERBS = ["announced", "rejected", "postponed", "questioned", "approved", "criticised",
         "welcomed", "reviewed", "funded", "delayed", "defended", "proposed"]  # fmt: skip
OBJECTS = ["a new budget", "the bridge repairs", "plans for a tram line", "the water tariff",
           "a merger", "the school closures", "an inquiry", "the festival", "higher fees",
           "the flood barrier", "a housing scheme", "the night bus trial"]  # fmt: skip
TAILS = ["on Monday", "after a long debate", "despite protests", "in a short statement",
         "for the third time", "before the summer", "without a vote", "amid rising costs",
         "at a packed meeting", "to general surprise", "under pressure", "late on Friday"]  # fmt: skip  # noqa: E501


def story(rng: random.Random, sentences: int = 12) -> str:
    return " ".join(
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}."
        for _ in range(sentences)
    )


def light_edit(rng: random.Random, text: str) -> str:
    """A wire story as another site runs it: a new headline line, one sentence added, about one
    word in twenty-five changed."""
    words = text.split()
    for i in range(len(words)):
        if rng.random() < 0.04:
            words[i] = rng.choice(["reportedly", "officially", "finally", "again"])
    return f"{rng.choice(SUBJECTS)} in the news. " + " ".join(words) + " More follows later."


def test_identical_texts_have_similarity_one() -> None:
    text = story(random.Random(1))
    assert similarity(signature(text), signature(text)) == 1.0


def test_signature_is_stable_and_sized() -> None:
    text = "Ferry services resume after the storm damaged the pier at the northern harbour."
    sig = signature(text)
    assert sig == signature(text)
    assert len(sig) == NUM_PERM
    assert all(0 <= v < 2**32 for v in sig)


def test_shingles_ignore_case_and_punctuation() -> None:
    assert shingles("One, two THREE four five six") == shingles("one two three four five six")
    assert shingles("short text") == {"short text"}
    assert shingles("") == set()


def test_similarity_rejects_signatures_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        similarity([1, 2], [1, 2, 3])


def test_it_links_light_edits_and_keeps_different_stories_apart() -> None:
    rng = random.Random(20240517)
    originals = [story(rng) for _ in range(150)]
    index = NearDupIndex()
    for number, text in enumerate(originals):
        index.add(number, signature(text))

    found_true = 0
    false_links = 0
    for number, text in enumerate(originals):
        match = index.find(signature(light_edit(rng, text)))
        if match == number:
            found_true += 1
        elif match is not None:
            false_links += 1
    unrelated = [index.find(signature(story(rng))) for _ in range(150)]
    false_links += sum(1 for m in unrelated if m is not None)

    recall = found_true / len(originals)
    links = found_true + false_links
    precision = found_true / links if links else 0.0
    assert recall >= 0.9, f"recall {recall:.2f}"
    assert precision >= 0.98, f"precision {precision:.2f}"


def test_it_returns_the_earliest_of_several_repeats() -> None:
    rng = random.Random(7)
    text = story(rng)
    index = NearDupIndex()
    index.add("first", signature(text))
    update = text + " The council said more details would follow next week."
    index.add("second", signature(update))
    assert index.find(signature("Breaking: " + update)) == "first"
    assert index.find(signature(text), exclude="first") == "second"


def test_it_ignores_a_signature_of_the_wrong_size() -> None:
    index = NearDupIndex()
    index.add("bad", [1, 2, 3])
    assert len(index) == 0
    assert index.find([1, 2, 3]) is None
