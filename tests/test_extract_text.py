"""Cleaning flattened page text: the seed dump, invented pages, and properties of the cleaner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import extract
from digest.errors import ExtractionError
from digest.ingest.dumps import clean_text, text_lines
from digest.ingest.extract import Extracted, detect_kind

SEED_DIR = Path(os.environ.get("DIGEST_SEED_DIR", Path(__file__).parents[2] / "shared" / "seed"))

# An invented page in the shape scrapers leave: navigation, headline, credit, body, appeals.
BODY = [
    "The harbour authority of Westmere approved a plan on Tuesday to dredge the northern channel, "
    "ending a dispute with fishing crews that had lasted almost three years.",
    "Under the plan, the channel will be deepened by two metres over the next eighteen months, "
    "allowing larger cargo vessels to reach the old grain terminal for the first time since 1998.",
    "Fishing crews had argued that the work would disturb spawning grounds in the estuary, and a "
    "regional court halted an earlier version of the project in the spring of last year.",
    "The new version moves the dredging season to the winter months and sets aside a fund for "
    "monitoring the estuary, which the crews' association said it could accept for now.",
    '"We did not get everything we asked for, but the river will still be a river," the '
    "association's chair told reporters outside the council building after the vote.",
    "Work is expected to begin in November, once the contractor has finished surveying the "
    "channel bed and the council has published the final timetable for the closures.",
]
PAGE = "\n\n".join(
    [
        "Skip to content",
        "Home",
        "News",
        "Sport",
        "Support our newsroom!",
        "Westmere Harbour Dredging Plan Approved After Three-Year Dispute",
        "Anna Kowal / Coastal Press / Reuters",
        *BODY,
        "Share this article",
        "Facebook",
        "Twitter",
        "Sign up for our morning newsletter",
        "Read more",
        "Privacy Policy",
        "© 2025 Westmere Gazette. All rights reserved.",
    ]
)


def test_it_recovers_headline_credit_and_body_of_an_invented_page() -> None:
    article = clean_text(PAGE)

    assert article.title == "Westmere Harbour Dredging Plan Approved After Three-Year Dispute"
    assert article.credit == "Anna Kowal / Coastal Press / Reuters"
    assert article.paragraphs == BODY


def test_it_cleans_the_seed_dump_exactly() -> None:
    dumps = sorted(SEED_DIR.glob("*.txt"))
    if not dumps:
        pytest.skip(f"no seed dump in {SEED_DIR}")
    text = dumps[0].read_text(encoding="utf-8")
    lines = text_lines(text)
    first = next(i for i, line in enumerate(lines) if line.startswith("NATO will supply"))
    last = next(i for i, line in enumerate(lines) if line.endswith("more hawkish governments."))

    article = extract(dumps[0].read_bytes())

    assert article.title == "NATO to Send Kiev Signals Equipment After Latest Ukraine-Russia Spat"
    assert article.credit == "Sergei Dolzhenko / EPA / TASS"
    assert article.paragraphs == lines[first : last + 1]
    assert len(article.paragraphs) == 8


def test_extract_detects_text_and_html() -> None:
    assert detect_kind(PAGE) == "text"
    assert detect_kind("<!doctype html><html><body><p>Hi</p></body></html>") == "html"
    assert detect_kind(b"<html><head></head><body><div>x</div></body></html>") == "html"


def test_extract_decodes_bytes_and_normalises_unicode() -> None:
    page = PAGE.replace("Westmere approved", "Westme\u200bre approved").replace("é", "e\u0301")
    article = extract(page.encode("utf-16"), kind="text")

    assert "\u200b" not in article.body
    assert article.paragraphs[0].startswith("The harbour authority of Westmere approved")


def test_extract_refuses_binary_and_empty_content() -> None:
    with pytest.raises(ExtractionError, match="looks binary"):
        extract(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ExtractionError, match="empty"):
        extract(b"  \n\n ")


def test_extract_names_a_page_without_article_text() -> None:
    with pytest.raises(ExtractionError, match="article text"):
        extract("Home\n\nAbout\n\nContact\n\nLogin", kind="text", url="https://example.org/x")


def test_to_json_gives_published_as_iso_8601() -> None:
    from datetime import UTC, datetime

    article = Extracted(title="T", body="B", published=datetime(2025, 3, 1, 9, 30, tzinfo=UTC))
    assert article.to_json()["published"] == "2025-03-01T09:30:00+00:00"


_LINE = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x0b\x0c"),
    max_size=120,
)
_PROSE = st.sampled_from(BODY + ["Home", "Sign up for our newsletter", "Photo: Getty Images"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_LINE, _PROSE), max_size=40))
def test_the_cleaner_never_crashes_and_only_returns_input_lines_in_order(
    lines: list[str],
) -> None:
    text = "\n".join(lines)
    try:
        article = clean_text(text)
    except ExtractionError:
        return
    source = text_lines(text)
    position = -1
    for paragraph in article.paragraphs:
        position = source.index(paragraph, position + 1)  # ValueError: not there, or reordered
    assert article.credit is None or article.credit in source
    assert article.title in source or article.paragraphs[0].startswith(article.title.rstrip("…"))


def test_a_small_run_far_from_the_main_text_is_a_stray() -> None:
    from digest.ingest.runs import drop_strays

    teaser = "Another story: council votes on the parking plan."
    lines = [teaser, *(f"nav {n}" for n in range(8)), *BODY]
    keep = [True] + [False] * 8 + [True] * len(BODY)

    assert drop_strays(lines, keep) == [False] + [False] * 8 + [True] * len(BODY)
    near = [teaser, "nav", *BODY]
    assert drop_strays(near, [True, False, *[True] * len(BODY)])[0] is True


def test_decode_honours_a_declared_charset_when_the_bytes_are_not_utf8() -> None:
    from digest.ingest.extract import decode

    page = '<html><head><meta charset="windows-1252"></head><body>Caf\xe9 cr\xe8me</body></html>'

    assert "Café crème" in decode(page.encode("cp1252"))
    assert decode("Grüße".encode()) == "Grüße"
