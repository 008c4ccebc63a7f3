"""`digest ingest` over real sources: feeds and pages served on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from support_cli import env_for as cli_env
from typer.testing import CliRunner

from digest.cli import app
from digest.db import make_engine, session_scope
from digest.ingest.run import ingest_sources
from digest.models import Article, Source
from digest.settings import Settings
from tests.http_support import LocalServer, Route, serve

runner = CliRunner()

WIRE = (
    "The regional ferry operator said on Tuesday that crossings to the northern island would "
    "resume in the first week of June after engineers completed repairs to the storm-damaged "
    "pier. Four return trips a day are planned through the summer, falling to two in winter. "
    "Island traders said the closure had cost them most of their day visitors for three years "
    "and welcomed the news, while the operator promised to keep fares at last year's level."
)
OTHER = (
    "The city library will open on Sundays from next month, the council said, after a trial "
    "in the spring drew more visitors than any weekday. The extra hours will be staffed by "
    "volunteers and two new part-time librarians, paid for by savings on the heating bill "
    "since the roof was insulated. Children's reading groups will move to Sunday mornings."
)


def rss(*items: tuple[str, str, str], title: str = "Harbour Times") -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>https://{slug}</link>"
        f"<pubDate>Tue, 14 May 2024 09:30:00 GMT</pubDate><description>{text}</description></item>"
        for t, slug, text in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://example.org/</link>{body}</channel></rss>"
    ).encode()


def page(text: str, *, lang: str = "en") -> bytes:
    paragraphs = "".join(f"<p>{s.strip()}.</p>" for s in text.split(". ") if s.strip())
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>Story</title>'
        f"</head><body><nav><a href='/'>Home</a></nav><article><h1>Story</h1>{paragraphs}"
        "</article></body></html>"
    ).encode()


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    return cli_env(
        settings, **{"DIGEST_FETCH_TIMEOUT": "1", "DIGEST_MAX_PAGE_BYTES": "200000", **extra}
    )


def cli(settings: Settings, *args: str) -> dict[str, object]:
    result = runner.invoke(app, [*args], env=env_for(settings))
    assert result.exit_code == 0, (result.output, result.exception)
    if "--json" in args:
        try:
            parsed: dict[str, object] = json.loads(result.output)
        except json.JSONDecodeError:
            raise AssertionError(f"not JSON: {result.output!r}") from None
        return parsed
    return {"output": result.output}


def articles(settings: Settings) -> list[Article]:
    with session_scope(make_engine(settings)) as session:
        rows = list(session.exec(select(Article).order_by(Article.id)))  # type: ignore[arg-type]
        session.expunge_all()
    return rows


def source_row(settings: Settings, name: str) -> Source:
    with session_scope(make_engine(settings)) as session:
        row = session.exec(select(Source).where(Source.name == name)).one()
        session.expunge(row)
    return row


@pytest.fixture
def server() -> Iterator[LocalServer]:
    routes = {
        "/feed.xml": Route(
            rss(("Ferry crossings resume", "harbour.example.org/ferry", WIRE)),
            content_type="application/rss+xml",
            etag='"v1"',
        ),
        "/wire.xml": Route(
            rss(
                (
                    "Island ferry back in June",
                    "coast.example.net/ferry-june",
                    "Updated: " + WIRE.replace("Tuesday", "Tuesday morning"),
                ),
                ("Library opens on Sundays", "coast.example.net/library", OTHER),
                title="Coast News",
            ),
            content_type="application/rss+xml",
        ),  # fmt: skip
        "/slow.xml": Route(rss(), delay=3.0),
        "/truncated.xml": Route(rss(("A", "a.example.org/a", WIRE))[:90]),
        "/teasers.xml": Route(
            rss(("Library opens on Sundays", "127.0.0.1:PORT/library", "The library will…"))
        ),
        "/library": Route(page(OTHER)),
        "/story-de": Route(page(OTHER, lang="de")),
        "/huge": Route(page(OTHER * 1000)),
    }
    with serve(routes) as running:
        teaser = routes["/teasers.xml"]
        teaser.body = teaser.body.replace(b"PORT", str(running.port).encode())
        teaser.body = teaser.body.replace(b"https://127.0.0.1", b"http://127.0.0.1")
        yield running


def add(settings: Settings, name: str, location: str, *extra: str) -> None:
    cli(settings, "sources", "add", name, location, *extra)


def test_an_unchanged_feed_costs_one_304(settings: Settings, server: LocalServer) -> None:
    add(settings, "Harbour", server.url("/feed.xml"))
    first = cli(settings, "ingest", "--source", "Harbour", "--json")
    second = cli(settings, "ingest", "--source", "Harbour", "--json")
    assert first["new"] == 1
    assert second == {**second, "new": 0, "updated": 0, "not_modified": 1}
    assert [r.status for r in server.requests] == [200, 304]
    assert source_row(settings, "Harbour").etag == '"v1"'


def test_an_unchanged_page_costs_one_304_too(settings: Settings, server: LocalServer) -> None:
    server.routes["/story"] = Route(page(OTHER), etag='"p1"')
    add(settings, "Library", server.url("/story"), "--kind", "page")
    first = cli(settings, "ingest", "--source", "Library", "--json")
    second = cli(settings, "ingest", "--source", "Library", "--json")
    assert first["new"] == 1
    assert second == {**second, "new": 0, "updated": 0, "not_modified": 1}
    assert [r.status for r in server.requests if r.path == "/story"] == [200, 304]
    assert source_row(settings, "Library").etag == '"p1"'


def test_the_same_article_again_updates_its_row(settings: Settings, server: LocalServer) -> None:
    add(settings, "Harbour", server.url("/feed.xml"))
    cli(settings, "ingest", "--json")
    server.routes["/feed.xml"] = Route(
        rss(("Ferry crossings resume (updated)", "harbour.example.org/ferry?utm_source=rss",
             WIRE + " Tickets go on sale on Friday.")),
        etag='"v2"',
    )  # fmt: skip
    report = cli(settings, "ingest", "--source", "Harbour", "--json")
    assert (report["new"], report["updated"]) == (0, 1)
    (row,) = articles(settings)
    assert row.title == "Ferry crossings resume (updated)"
    assert row.key == "https://harbour.example.org/ferry"


def test_failing_sources_are_recorded_and_the_run_goes_on(
    settings: Settings, server: LocalServer
) -> None:
    add(settings, "Harbour", server.url("/feed.xml"))
    add(settings, "Slow", server.url("/slow.xml"))
    add(settings, "Missing", server.url("/no-such-feed.xml"))
    add(settings, "Truncated", server.url("/truncated.xml"))
    add(settings, "Huge", server.url("/huge"), "--kind", "page")
    add(settings, "German", server.url("/story-de"), "--kind", "page")
    report = cli(settings, "ingest", "--json")
    assert report["new"] == 1
    reasons = {f["input"]: f["reason"] for f in report["failed"]}  # type: ignore[attr-defined]
    assert "timed out" in reasons["Slow"]
    assert "HTTP 404" in reasons["Missing"]
    assert reasons["Truncated"].startswith(f"feed {server.url('/truncated.xml')}: ")
    assert "too large" in reasons["Huge"]
    assert "language 'de'" in reasons["German"]
    assert all("\n" not in r for r in reasons.values())
    slow = source_row(settings, "Slow")
    assert slow.consecutive_failures == 1 and slow.last_error == reasons["Slow"]
    assert source_row(settings, "Harbour").last_success_at is not None
    assert [a.source_name for a in articles(settings)] == ["Harbour"]


def test_the_table_names_each_failure(settings: Settings, server: LocalServer) -> None:
    add(settings, "Missing", server.url("/no-such-feed.xml"))
    out = str(cli(settings, "ingest")["output"])
    assert "new" in out and "duplicates" in out and "failed" in out
    assert "Missing" in out and "HTTP 404" in out


def test_a_wire_story_on_two_sites_is_linked(settings: Settings, server: LocalServer) -> None:
    add(settings, "Harbour", server.url("/feed.xml"))
    add(settings, "Coast", server.url("/wire.xml"))
    cli(settings, "ingest", "--source", "Harbour", "--json")
    report = cli(settings, "ingest", "--source", "Coast", "--json")
    assert report["new"] == 2 and report["linked"] == 1
    first, copy, library = articles(settings)
    assert copy.duplicate_of_id == first.id
    assert first.duplicate_of_id is None and library.duplicate_of_id is None
    assert first.signature and len(first.signature) == 64


def test_teasers_are_completed_from_the_page_when_asked(
    settings: Settings, server: LocalServer
) -> None:
    add(settings, "Teasers", server.url("/teasers.xml"), "--fetch-full", "--section", "City")
    report = cli(settings, "ingest", "--json")
    assert report["new"] == 1, report
    (row,) = articles(settings)
    assert "volunteers and two new part-time librarians" in row.body
    assert row.title == "Library opens on Sundays"
    assert row.section == "City"


def test_without_fetch_full_the_teaser_is_stored_as_is(
    settings: Settings, server: LocalServer
) -> None:
    add(settings, "Teasers", server.url("/teasers.xml"))
    cli(settings, "ingest", "--json")
    (row,) = articles(settings)
    assert row.body == "The library will…"
    assert not any(r.path == "/library" for r in server.requests)


def test_only_due_sources_are_polled(settings: Settings, server: LocalServer) -> None:
    add(settings, "Harbour", server.url("/feed.xml"), "--interval", "60")
    engine = make_engine(settings)
    start = datetime(2024, 5, 14, 8, tzinfo=UTC)
    first = ingest_sources(engine, settings=settings, now=start)
    soon = ingest_sources(engine, settings=settings, now=start.replace(minute=30))
    later = ingest_sources(engine, settings=settings, now=start.replace(hour=9, minute=5))
    assert (first.sources, soon.sources, later.sources) == (1, 0, 1)


def test_a_stop_request_ends_the_run_between_sources_and_the_rest_stay_due(
    settings: Settings, server: LocalServer
) -> None:
    import threading

    add(settings, "Harbour", server.url("/feed.xml"))
    add(settings, "Coast", server.url("/wire.xml"))
    engine = make_engine(settings)
    stop = threading.Event()
    start = datetime(2024, 5, 14, 8, tzinfo=UTC)
    first = ingest_sources(  # SIGTERM arrives while the first source is being stored
        engine, settings=settings, now=start, stop=stop, on_source=lambda *_: stop.set()
    )
    assert (first.sources, first.left) == (1, 1)
    assert "1 source(s) left for the next run" in first.summary()
    rest = ingest_sources(engine, settings=settings, now=start)
    assert (rest.sources, rest.left) == (1, 0)  # the one left is still due, the other is not


def test_files_can_be_given_as_paths(settings: Settings, tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path)) / "in"
    folder.mkdir()
    (folder / "feed.xml").write_bytes(rss(("Ferry crossings resume", "h.example.org/f", WIRE)))
    (folder / "broken.html").write_bytes(b"\x00\x01binary")
    report = cli(settings, "ingest", str(folder), "--source", "Files", "--json")
    assert report["new"] == 1
    assert len(report["failed"]) == 1  # type: ignore[arg-type]
    again = cli(settings, "ingest", str(folder), "--json")
    assert again["new"] == 0 and again["duplicates"] == 1
