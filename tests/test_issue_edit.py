"""An editor's hand on a draft: pin, drop, move, blurb, subject; explain; sent issues frozen.

Real SQLite file (and PostgreSQL when configured), the real pipeline and CLI; the articles are
written for these tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from digest.cli import app
from digest.db import make_engine, session_scope
from digest.errors import InputError, NotFound, StateError
from digest.models import Article, EditKind, Issue, IssueItem, IssueStatus
from digest.pipeline import build_issue, edit_issue
from digest.settings import Settings
from digest.store.articles import ArticleData, upsert_article

NOW = datetime(2026, 3, 16, 7, 0, tzinfo=UTC)  # Monday after ISO week 2026-W11
WEEK = "2026-W11"
runner = CliRunner()

STORIES = [
    # (outlets reporting it, title, lead): the first is widely covered, so it leads.
    (
        ["north.example", "south.example", "east.example"],
        "Harbour bridge reopens after repairs",
        "The harbour bridge reopened on Tuesday after eight months of cable repairs.",
    ),
    (
        ["north.example", "west.example"],
        "Council approves bus lanes on four roads",
        "The city council voted to add bus lanes on four main roads.",
    ),
    (
        ["south.example"],
        "Library extends its opening hours",
        "The central library will open until ten at night from next month.",
    ),
    (
        ["east.example"],
        "Volunteers clear the river banks",
        "More than four hundred volunteers cleared rubbish from the river banks on Saturday.",
    ),
    (
        ["west.example"],
        "Bakery on Mill Street wins national prize",
        "A family bakery on Mill Street won the national prize for its sourdough bread.",
    ),
    (
        ["north.example"],
        "Tram depot to become a market hall",
        "The old tram depot will reopen next year as a covered market hall.",
    ),
    (
        ["south.example"],
        "Choir wins regional contest",
        "The youth choir took first place in the regional singing contest.",
    ),
]


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def _store_week(settings: Settings) -> dict[str, int]:
    """Stores the stories; returns the article id of each story's first article by title."""
    ids: dict[str, int] = {}
    with _session(settings) as session:
        for s, (outlets, title, lead) in enumerate(STORIES):
            for o, outlet in enumerate(outlets):
                words = title.split()
                variant = title if o == 0 else " ".join(words[1:] + words[:1])
                body = f"{lead}\n\n" + " ".join(f"Detail {s}-{o}-{k} follows." for k in range(60))
                article, _ = upsert_article(
                    session,
                    ArticleData(
                        key=f"https://{outlet}/{s}", title=variant, body=body,
                        source_name=outlet, url=f"https://{outlet}/{s}",
                        published_at=datetime(2026, 3, 10, 9, tzinfo=UTC) + timedelta(hours=s),
                    ),
                    now=NOW,
                )  # fmt: skip
                session.flush()
                assert article.id is not None
                ids.setdefault(title, article.id)
    return ids


@pytest.fixture
def draft(settings: Settings) -> tuple[Settings, dict[str, int]]:
    settings = settings.model_copy(update={"items_per_issue": 4, "max_outlet_share": 1.0})
    ids = _store_week(settings)
    build_issue(settings=settings, now=NOW, week=WEEK)
    return settings, ids


def _items(settings: Settings) -> list[IssueItem]:
    with _session(settings) as session:
        issue = session.exec(select(Issue).where(Issue.week == WEEK)).one()
        return list(
            session.exec(
                select(IssueItem)
                .where(IssueItem.issue_id == issue.id)
                .order_by(col(IssueItem.position))
            )
        )


def _issue(settings: Settings) -> Issue:
    with _session(settings) as session:
        return session.exec(select(Issue).where(Issue.week == WEEK)).one()


def _titles(settings: Settings) -> list[str]:
    return [i.title for i in _items(settings)]


def test_a_pinned_article_joins_the_draft_and_survives_a_rebuild(draft) -> None:  # type: ignore[no-untyped-def]
    settings, ids = draft
    assert "Choir wins regional contest" not in _titles(settings)
    result = edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.PIN,
                        article_id=ids["Choir wins regional contest"])  # fmt: skip
    assert "+ Choir wins regional contest" in result.changes
    build_issue(settings=settings, now=NOW + timedelta(hours=2), week=WEEK)
    items = _items(settings)
    choir = next(i for i in items if i.title == "Choir wins regional contest")
    assert choir.pinned
    assert "Choir wins regional contest" in _issue(settings).html


def test_an_edit_whose_rebuild_fails_is_undone_and_the_earlier_edit_stays(  # type: ignore[no-untyped-def]
    draft, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digest.pipeline as pipeline
    from digest.errors import DigestError
    from digest.models import IssueEdit

    settings, ids = draft
    choir = ids["Choir wins regional contest"]
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.PIN, article_id=choir)
    html = _issue(settings).html

    def broken_rebuild(**_: object) -> None:
        # Injected: a rebuild's real failures (a template error, a database that goes away)
        # cannot be caused on demand here.
        raise DigestError("rendering failed")

    monkeypatch.setattr(pipeline, "build_issue", broken_rebuild)
    with pytest.raises(DigestError, match="rendering failed"):  # the drop replaces the pin
        edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.DROP, article_id=choir)
    with _session(settings) as session:
        edits = session.exec(select(IssueEdit)).all()
    assert [(e.kind, e.article_id) for e in edits] == [(EditKind.PIN, choir)]
    assert _issue(settings).html == html


def test_a_dropped_story_leaves_and_the_next_best_fills_in_even_after_a_rebuild(draft) -> None:  # type: ignore[no-untyped-def]
    settings, ids = draft
    before = _titles(settings)
    assert before[0] == "Harbour bridge reopens after repairs"
    result = edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.DROP,
                        article_id=ids["Harbour bridge reopens after repairs"])  # fmt: skip
    assert "- Harbour bridge reopens after repairs" in result.changes
    build_issue(settings=settings, now=NOW, week=WEEK)
    after = _titles(settings)
    assert not any("bridge" in t.lower() for t in after)
    assert len(after) == len(before) == 4
    left_out = _issue(settings).left_out
    assert {"reason": "dropped by the editor"}.items() <= next(
        row for row in left_out if row["article_id"] == ids["Harbour bridge reopens after repairs"]
    ).items()


def test_pinning_a_dropped_article_brings_it_back(draft) -> None:  # type: ignore[no-untyped-def]
    settings, ids = draft
    bridge = ids["Harbour bridge reopens after repairs"]
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.DROP, article_id=bridge)
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.PIN, article_id=bridge)
    assert "Harbour bridge reopens after repairs" in _titles(settings)


def test_moves_and_blurbs_are_kept_across_rebuilds(draft) -> None:  # type: ignore[no-untyped-def]
    settings, _ = draft
    third = _titles(settings)[2]
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.MOVE, item=3, position=1)
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.BLURB, item=1,
               text="  The editor's own words.  ")  # fmt: skip
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.SUBJECT, text="Our week")
    build_issue(settings=settings, now=NOW, week=WEEK)
    items = _items(settings)
    assert items[0].title == third
    assert items[0].blurb == "The editor's own words."
    issue = _issue(settings)
    assert issue.subject == "Our week"
    assert "The editor&#39;s own words." in issue.html or "The editor's own words." in issue.html


def test_wrong_items_and_empty_words_are_refused_with_a_clear_line(draft) -> None:  # type: ignore[no-untyped-def]
    settings, _ = draft
    with pytest.raises(NotFound, match="has no item 9 .it has 4"):
        edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.MOVE, item=9, position=1)
    with pytest.raises(NotFound, match="no article 999999"):
        edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.PIN, article_id=999999)
    with pytest.raises(InputError, match="blurb is empty"):
        edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.BLURB, item=1, text=" ")


def test_a_sent_issue_cannot_be_edited(draft) -> None:  # type: ignore[no-untyped-def]
    settings, ids = draft
    with _session(settings) as session:
        issue = session.exec(select(Issue).where(Issue.week == WEEK)).one()
        issue.status = IssueStatus.SENT
        session.add(issue)
    with pytest.raises(StateError, match="is sent; only a draft can be edited"):
        edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.DROP,
                   article_id=ids["Library extends its opening hours"])  # fmt: skip
    env = {
        **os.environ,
        "DIGEST_DATA_DIR": str(settings.data_dir),
        "DIGEST_DATABASE_URL": settings.db_url,
    }
    done = subprocess.run(
        [sys.executable, "-c", "from digest.cli import main; main()", "issue", "pin", WEEK,
         str(ids["Library extends its opening hours"])],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: the issue for {WEEK} is sent; only a draft can be edited"
    ]


def test_explain_gives_score_parts_and_the_stories_left_out(draft) -> None:  # type: ignore[no-untyped-def]
    settings, ids = draft
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.PIN,
               article_id=ids["Choir wins regional contest"])  # fmt: skip
    env = {
        "DIGEST_DATA_DIR": str(settings.data_dir),
        "DIGEST_DATABASE_URL": settings.db_url,
    }
    result = runner.invoke(app, ["issue", "explain", WEEK, "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    first = data["items"][0]
    assert first["title"] == "Harbour bridge reopens after repairs"
    assert set(first["score_parts"]) == {"coverage", "recency", "source", "boost", "quality"}
    assert first["score"] == pytest.approx(sum(first["score_parts"].values()), abs=1e-5)
    assert sorted(first["also_reported_by"]) == ["east.example", "south.example"]
    choir = next(i for i in data["items"] if i["title"] == "Choir wins regional contest")
    assert choir["editor"] == ["pinned"]
    assert data["left_out"], "a 7-story week with 5 items leaves stories out"
    assert all(row["reason"] for row in data["left_out"])

    table = runner.invoke(app, ["issue", "explain", WEEK], env=env)
    assert table.exit_code == 0, table.output
    assert "Best stories left out" in table.output
    assert str(data["left_out"][0]["article_id"]) in table.output.split("Best stories left out")[1]


def test_the_cli_pins_and_prints_what_changed(draft) -> None:  # type: ignore[no-untyped-def]
    settings, ids = draft
    env = {
        "DIGEST_DATA_DIR": str(settings.data_dir),
        "DIGEST_DATABASE_URL": settings.db_url,
        "DIGEST_ITEMS_PER_ISSUE": "4",
        "DIGEST_MAX_OUTLET_SHARE": "1.0",
    }
    article_id = ids["Choir wins regional contest"]
    result = runner.invoke(app, ["issue", "pin", WEEK, str(article_id)], env=env)
    assert result.exit_code == 0, result.output
    assert f"pin of article {article_id} recorded; rebuilt issue {WEEK}" in result.output
    assert "+ Choir wins regional contest" in result.output
    moved = runner.invoke(app, ["issue", "move", "2", "--to", "1", "--issue", WEEK], env=env)
    assert moved.exit_code == 0, moved.output


def test_a_sources_section_and_weight_reach_the_issue(settings: Settings) -> None:
    from digest.models import Source, SourceKind

    settings = settings.model_copy(update={"items_per_issue": 6, "max_outlet_share": 1.0})
    with _session(settings) as session:
        heavy = Source(
            name="north.example",
            kind=SourceKind.FEED,
            location="https://north.example/feed",
            section="City",
            weight=3.0,
        )
        session.add(heavy)
        session.flush()
        heavy_id = heavy.id
    _store_week(settings)
    with _session(settings) as session:
        for row in session.exec(select(Article).where(Article.source_name == "north.example")):
            row.source_id = heavy_id
            session.add(row)
    build_issue(settings=settings, now=NOW, week=WEEK)
    items = _items(settings)
    north = [i for i in items if i.source_name == "north.example"]
    others = [i for i in items if i.source_name != "north.example"]
    assert north and others
    assert {i.section for i in north} == {"City"} and {i.section for i in others} == {""}
    assert min(i.score_parts["source"] for i in north) > max(
        i.score_parts["source"] for i in others
    )


def test_the_weeks_length_before_the_send_time_comes_from_settings(settings: Settings) -> None:
    thursday = datetime(2026, 3, 12, 7, 0, tzinfo=UTC)  # next send: Friday 13 March, 08:00
    short = settings.model_copy(update={"window_days": 3})
    _store_week(short)
    result = build_issue(settings=short, now=thursday)
    assert result.issue is not None
    issue = _issue(short)
    assert issue.window_end == datetime(2026, 3, 13, 8, 0, tzinfo=UTC)
    assert issue.window_start == datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    too_short = settings.model_copy(update={"window_days": 1})
    assert build_issue(settings=too_short, now=thursday).issue is None


def test_explain_flags_an_undated_article(draft) -> None:  # type: ignore[no-untyped-def]
    settings, _ = draft
    with _session(settings) as session:
        undated, _ = upsert_article(
            session,
            ArticleData(
                key="https://west.example/undated", title="Ferry timetable changes",
                body="The ferry will leave every forty minutes from next week.\n\nMore text.",
                source_name="west.example", url="https://west.example/undated",
            ),
            now=datetime(2026, 3, 11, 12, tzinfo=UTC),  # first seen inside the week
        )  # fmt: skip
        session.flush()
        undated_id = undated.id
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.PIN, article_id=undated_id)
    env = {"DIGEST_DATA_DIR": str(settings.data_dir), "DIGEST_DATABASE_URL": settings.db_url}
    data = json.loads(runner.invoke(app, ["issue", "explain", WEEK, "--json"], env=env).output)
    flags = {i["title"]: i["undated"] for i in data["items"]}
    assert flags.pop("Ferry timetable changes") is True
    assert not any(flags.values())


def test_a_boost_lifts_a_single_source_story_to_the_top_and_survives_a_rebuild(draft) -> None:  # type: ignore[no-untyped-def]
    settings, ids = draft
    choir = "Choir wins regional contest"
    assert choir not in _titles(settings)
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.BOOST,
               article_id=ids[choir], amount=5.0)  # fmt: skip
    build_issue(settings=settings, now=NOW + timedelta(hours=1), week=WEEK)
    items = _items(settings)
    assert items[0].title == choir
    assert items[0].score_parts["boost"] > 0
    edit_issue(settings=settings, now=NOW, ref=WEEK, kind=EditKind.BOOST,
               article_id=ids[choir], amount=0.0)  # fmt: skip
    assert choir not in _titles(settings)


def test_the_cli_boosts_a_story(draft) -> None:  # type: ignore[no-untyped-def]
    settings, ids = draft
    env = {"DIGEST_DATA_DIR": str(settings.data_dir), "DIGEST_DATABASE_URL": settings.db_url,
           "DIGEST_ITEMS_PER_ISSUE": "4", "DIGEST_MAX_OUTLET_SHARE": "1.0"}  # fmt: skip
    choir = str(ids["Choir wins regional contest"])
    result = runner.invoke(app, ["issue", "boost", WEEK, choir, "5"], env=env)
    assert result.exit_code == 0, result.output
    assert _titles(settings)[0] == "Choir wins regional contest"
