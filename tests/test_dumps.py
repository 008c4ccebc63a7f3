"""Reading dump files: one article per .txt, one per record in .jsonl and .csv."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.errors import InputError
from digest.ingest.dumps import clean_body, parse_published, read_dump

# An invented article, flattened with a little of the page around it.
BODY = [
    "The city library in Orrin will open on Sundays from next month, after the council found "
    "money in its culture budget to pay for two additional librarians and a security guard.",
    "Readers had collected more than four thousand signatures for Sunday opening last winter, "
    "arguing that students and shift workers could not use the building during the week.",
    "The library will trial the new hours until the end of the year and then publish figures "
    "on how many people came, the head librarian said in a statement on Friday morning.",
]
PAGE = "\n\n".join(
    [
        "Menu",
        "Search",
        "Orrin Library to Open on Sundays From Next Month",
        "Photo: Dan Ivers",
        *BODY,
        "Share this story",
        "Newsletter sign-up",
        "Terms of use",
    ]
)


def test_a_txt_dump_is_one_cleaned_article(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text(PAGE, encoding="utf-8")

    (record,) = read_dump(path)

    assert record.error is None and record.article is not None
    assert record.article.title == "Orrin Library to Open on Sundays From Next Month"
    assert record.article.credit == "Photo: Dan Ivers"
    assert record.article.paragraphs == BODY


def test_jsonl_records_keep_their_fields_and_bad_lines_do_not_stop_the_rest(
    tmp_path: Path,
) -> None:
    good = {
        "title": "Library opens on Sundays",
        "body": "\n".join([*BODY[:2], "Share on Facebook", "Photo: Anna Kowal"]),
        "url": "https://gazette.example/library",
        "published": "2025-03-04T08:15:00+01:00",
        "author": "Lea Moor",
        "source": "Westmere Gazette",
    }
    headless = {"text": PAGE, "date": "Tue, 04 Mar 2025 09:00:00 GMT"}
    path = tmp_path / "dump.jsonl"
    path.write_text(
        "\n".join(
            [json.dumps(good), "{not json", json.dumps({"title": "No text"}), json.dumps(headless)]
        ),
        encoding="utf-8",
    )

    records = list(read_dump(path))

    assert [r.line for r in records] == [1, 2, 3, 4]
    first, broken, textless, last = records
    assert first.article is not None and first.source == "Westmere Gazette"
    assert first.article.paragraphs == BODY[:2]
    assert first.article.credit == "Photo: Anna Kowal"
    assert first.article.published == datetime(
        2025, 3, 4, 8, 15, tzinfo=timezone(timedelta(hours=1))
    )
    assert first.article.author == "Lea Moor"
    assert (
        broken.article is None
        and broken.error
        == f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes)"
    )
    assert textless.error is not None and "no text" in textless.error and ":3:" in textless.error
    assert last.article is not None and last.article.paragraphs == BODY
    assert last.article.published == datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def test_csv_rows_are_articles_and_a_bad_date_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "dump.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Title", "Content", "URL", "Date"])
        writer.writerow(["Library", "\n".join(BODY), "https://g.example/a", "2025-03-04"])
        writer.writerow(["Second", BODY[0], "https://g.example/b", "next Tuesday"])

    first, second = read_dump(path)

    assert first.article is not None and first.article.paragraphs == BODY
    assert first.article.published == datetime(2025, 3, 4, tzinfo=UTC)
    assert second.article is None and second.error is not None
    assert second.error.startswith(f"{path}:") and "'next Tuesday'" in second.error


def test_an_unknown_or_missing_dump_raises_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown dump kind"):
        list(read_dump(_touch(tmp_path / "x.docx")))
    with pytest.raises(InputError, match="cannot read"):
        list(read_dump(tmp_path / "missing.jsonl"))


def test_a_binary_txt_dump_becomes_an_error_record(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(bytes(range(256)) * 4)

    (record,) = read_dump(path)

    assert record.article is None and record.error is not None and "binary" in record.error


def test_clean_body_drops_prompts_and_moves_the_credit() -> None:
    body, credit = clean_body("\n".join([BODY[0], "Photo: Getty Images", "Subscribe now", BODY[1]]))

    assert body == f"{BODY[0]}\n\n{BODY[1]}"
    assert credit == "Photo: Getty Images"


def test_parse_published_reads_iso_and_rfc_2822() -> None:
    assert parse_published("2025-01-02T03:04:05Z") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_published("Thu, 02 Jan 2025 03:04:05 +0000") == datetime(
        2025, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert parse_published(None) is None


def _touch(path: Path) -> Path:
    path.write_text("x")
    return path


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(max_size=80), max_size=12))
def test_any_jsonl_content_gives_one_record_per_line_and_never_raises(
    tmp_path: Path, raw_lines: list[str]
) -> None:
    lines = [line.replace("\n", " ").replace("\r", " ") for line in raw_lines]
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")

    records = list(read_dump(path))

    assert all((r.article is None) != (r.error is None) for r in records)
    assert len(records) <= sum(1 for line in lines if line.strip())
