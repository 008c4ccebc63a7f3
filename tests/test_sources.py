"""`digest sources add|list|remove|check` through the real CLI and a real database file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_cli import env_for
from typer.testing import CliRunner

from digest.cli import app
from digest.errors import InputError, NotFound
from digest.settings import Settings
from tests.http_support import LocalServer, Route, serve

runner = CliRunner()

ITEM = """<item><title>{title}</title><link>https://harbour.example.org/{slug}</link>
<pubDate>Tue, 14 May 2024 09:30:00 GMT</pubDate><description>{text}</description></item>"""


def feed(*items: tuple[str, str, str]) -> bytes:
    body = "".join(ITEM.format(title=t, slug=s, text=x) for t, s, x in items)
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Times</title>'
        f"<link>https://harbour.example.org/</link>{body}</channel></rss>"
    ).encode()


def cli(settings: Settings, *args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, list(args), env=env_for(settings))
    return result.exit_code, result.output, result.exception


@pytest.fixture
def server() -> Iterator[LocalServer]:
    routes = {
        "/feed.xml": Route(
            feed(("Pier reopens", "pier", "Crossings resume in June.")),
            content_type="application/rss+xml",
        ),
        "/not-a-feed": Route(b"<html><body><p>Hello</p></body></html>"),
    }
    with serve(routes) as running:
        yield running


def test_add_then_list_shows_the_source(settings: Settings, server: LocalServer) -> None:
    code, out, _ = cli(settings, "sources", "add", "Harbour Times", server.url("/feed.xml"),
                       "--section", "Local", "--weight", "1.5", "--interval", "30",
                       "--fetch-full")  # fmt: skip
    assert code == 0, out
    assert "added feed source 'Harbour Times'" in out
    code, out, _ = cli(settings, "sources", "list", "--json")
    assert code == 0, out
    (row,) = json.loads(out)
    assert row["name"] == "Harbour Times"
    assert row["kind"] == "feed"
    assert row["section"] == "Local"
    assert row["weight"] == 1.5
    assert row["interval_minutes"] == 30
    assert row["fetch_full"] is True
    assert row["last_success_at"] is None
    assert row["consecutive_failures"] == 0
    assert row["articles_this_week"] == 0


def test_list_shows_health_after_an_ingest(settings: Settings, server: LocalServer) -> None:
    cli(settings, "sources", "add", "Harbour Times", server.url("/feed.xml"))
    cli(settings, "sources", "add", "Broken", server.url("/not-a-feed"))
    code, out, _ = cli(settings, "ingest")
    assert code == 0, out
    code, out, _ = cli(settings, "sources", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["Harbour Times"]["last_success_at"] is not None
    assert rows["Harbour Times"]["articles_this_week"] == 1
    assert rows["Broken"]["consecutive_failures"] == 1
    assert "not-a-feed" in rows["Broken"]["last_error"]
    code, out, _ = cli(settings, "sources", "list")
    assert code == 0
    assert "Harbour Times" in out and "Broken" in out


def test_a_dump_source_needs_an_existing_path(settings: Settings, tmp_path: Path) -> None:
    code, _, exc = cli(settings, "sources", "add", "Archive", str(tmp_path / "missing"))
    assert code != 0
    assert isinstance(exc, InputError)
    assert "does not exist" in str(exc)
    (tmp_path / "dumps").mkdir()
    code, out, _ = cli(settings, "sources", "add", "Archive", str(tmp_path / "dumps"))
    assert code == 0, out
    assert "added dump source" in out


def test_names_are_unique_and_kinds_are_checked(settings: Settings, server: LocalServer) -> None:
    cli(settings, "sources", "add", "Harbour Times", server.url("/feed.xml"))
    code, _, exc = cli(settings, "sources", "add", "Harbour Times", server.url("/feed.xml"))
    assert isinstance(exc, InputError) and "exists already" in str(exc)
    code, _, exc = cli(settings, "sources", "add", "X", server.url("/feed.xml"), "--kind", "tv")
    assert isinstance(exc, InputError) and "unknown source kind" in str(exc)


def test_remove_keeps_the_articles(settings: Settings, server: LocalServer) -> None:
    from digest.db import make_engine, session_scope
    from digest.store.articles import count_articles

    cli(settings, "sources", "add", "Harbour Times", server.url("/feed.xml"))
    cli(settings, "ingest")
    code, out, _ = cli(settings, "sources", "remove", "Harbour Times", "--dry-run")
    assert code == 0 and "would remove" in out
    code, out, _ = cli(settings, "sources", "remove", "Harbour Times")
    assert code == 0, out
    assert "1 article(s) kept" in out
    code, out, _ = cli(settings, "sources", "list", "--json")
    assert json.loads(out) == []
    with session_scope(make_engine(settings)) as session:
        assert count_articles(session) == 1
    code, _, exc = cli(settings, "sources", "remove", "Harbour Times")
    assert isinstance(exc, NotFound)


def test_check_fetches_without_storing(settings: Settings, server: LocalServer) -> None:
    from digest.db import make_engine, session_scope
    from digest.store.articles import count_articles

    cli(settings, "sources", "add", "Harbour Times", server.url("/feed.xml"))
    code, out, _ = cli(settings, "sources", "check", "Harbour Times", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert [i["title"] for i in report["items"]] == ["Pier reopens"]
    with session_scope(make_engine(settings)) as session:
        assert count_articles(session) == 0


def test_check_of_a_broken_source_is_one_line_and_exit_1(
    settings: Settings, server: LocalServer
) -> None:
    cli(settings, "sources", "add", "Broken", server.url("/not-a-feed"))
    done = subprocess.run(
        [sys.executable, "-c", "from digest.cli import main; main()", "sources", "check", "Broken"],
        env={**env_for(settings), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: feed {server.url('/not-a-feed')}: ")
