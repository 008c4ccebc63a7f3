"""Blocks a source prints under many of its articles are learned and dropped from then on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from digest.db import make_engine, session_scope
from digest.models import Article
from digest.pipeline import ingest_paths
from digest.settings import Settings

NOW = datetime(2026, 3, 13, 7, 0, tzinfo=UTC)
# Reads like article prose, so a page-by-page cleaner keeps it; only repetition gives it away.
APPEAL = (
    "The Harbour Times has been published by the Harbour Trust since 1921, when a group of "
    "fishermen and teachers founded the paper to report on the town and the coast around it."
)
STORIES = [
    ("Ferry timetable changes for the summer season", "harbour ferry"),
    ("Fishermen protest new quota rules at the quay", "quota protest"),
    ("Lighthouse restoration finally begins this spring", "lighthouse works"),
    ("Harbour school wins regional rowing championship", "rowing win"),
    ("New fish market opens beside the old customs house", "fish market"),
]


def story(title: str, topic: str, n: int) -> str:
    body = (
        f"The {topic} was the talk of the harbour on Tuesday, when officials confirmed the plans "
        f"in a meeting at the town hall that lasted well into the evening, story number {n}.\n\n"
        f"Residents said the {topic} had been expected for months and most of them welcomed "
        "the news, though some asked for more time to prepare for what comes next."
    )
    return f"{title}\n\n{body}\n\n{APPEAL}\n"


def test_an_appeal_repeated_under_every_article_is_learned_and_dropped(
    settings: Settings, tmp_path: Path
) -> None:
    for n, (title, topic) in enumerate(STORIES):
        path = tmp_path / f"{n}.txt"
        path.write_text(story(title, topic, n))
        report = ingest_paths([path], settings=settings, now=NOW, source_name="Harbour Times")
        assert report.failed == []
    with session_scope(make_engine(settings)) as session:
        bodies = {a.title: a.body for a in session.exec(select(Article)).all()}
    assert len(bodies) == len(STORIES)
    first, last = bodies[STORIES[0][0]], bodies[STORIES[-1][0]]
    assert "Harbour Trust since 1921" in first, "the page-by-page cleaner alone kept the appeal"
    assert "Harbour Trust since 1921" not in last, (
        "the appeal seen under three earlier articles was kept"
    )
    assert "fish market was the talk of the harbour" in last


def test_what_one_source_repeats_is_not_held_against_another(
    settings: Settings, tmp_path: Path
) -> None:
    for n, (title, topic) in enumerate(STORIES[:4]):
        path = tmp_path / f"{n}.txt"
        path.write_text(story(title, topic, n))
        ingest_paths([path], settings=settings, now=NOW, source_name="Harbour Times")
    other = tmp_path / "other.txt"
    other.write_text(story(*STORIES[4], 4))
    ingest_paths([other], settings=settings, now=NOW, source_name="Coast Gazette")
    with session_scope(make_engine(settings)) as session:
        row = session.exec(select(Article).where(Article.source_name == "Coast Gazette")).one()
    assert "fish market was the talk" in row.body
    assert "Harbour Trust since 1921" in row.body
