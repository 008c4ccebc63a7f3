"""The fetcher against a real HTTP server on 127.0.0.1, and its in-memory twin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest.errors import SourceError
from digest.ingest.fetch import Fetcher, user_agent
from digest.settings import Settings
from tests.http_support import LocalServer, Route, serve

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'


@pytest.fixture
def server() -> Iterator[LocalServer]:
    routes = {
        "/feed.xml": Route(
            FEED,
            content_type="application/rss+xml; charset=utf-8",
            etag='"v1"',
            last_modified="Tue, 14 May 2024 07:30:00 GMT",
        ),
        "/big": Route(b"x" * 300_000),
        "/big-streamed": Route(b"y" * 300_000, chunks=30),
        "/slow": Route(b"late", delay=2.0),
        "/gone": Route(b"gone", status=410),
    }
    with serve(routes) as running:
        yield running


def fetcher(*, timeout: float = 5.0, max_bytes: int = 100_000) -> Fetcher:
    return Fetcher(
        user_agent="digest/test (+https://news.example.org)", timeout=timeout, max_bytes=max_bytes
    )


def test_it_fetches_and_reports_validators_and_charset(server: LocalServer) -> None:
    with fetcher() as f:
        got = f.get(server.url("/feed.xml"))
    assert got.content == FEED
    assert got.content_type == "application/rss+xml"
    assert got.charset == "utf-8"
    assert got.etag == '"v1"'
    assert got.last_modified == "Tue, 14 May 2024 07:30:00 GMT"
    assert not got.not_modified


def test_it_sends_a_clear_user_agent(server: LocalServer, tmp_path: Path) -> None:
    agent = user_agent(Settings(data_dir=tmp_path, base_url="https://news.example.org/"))
    assert agent.startswith("digest/") and agent.endswith("(+https://news.example.org)")
    with Fetcher(user_agent=agent, timeout=5, max_bytes=10_000) as f:
        f.get(server.url("/feed.xml"))
    assert server.requests[-1].headers["user-agent"] == agent


def test_an_unchanged_feed_costs_one_304(server: LocalServer) -> None:
    with fetcher() as f:
        first = f.get(server.url("/feed.xml"))
        again = f.get(server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified)
    assert again.not_modified
    assert again.content == b""
    assert [r.status for r in server.requests] == [200, 304]
    assert server.requests[-1].headers["if-none-match"] == '"v1"'


def test_last_modified_alone_is_enough_for_a_304(server: LocalServer) -> None:
    with fetcher() as f:
        again = f.get(server.url("/feed.xml"), last_modified="Tue, 14 May 2024 07:30:00 GMT")
    assert again.not_modified


@pytest.mark.parametrize("path", ["/big", "/big-streamed"])
def test_it_stops_at_the_size_cap(server: LocalServer, path: str) -> None:
    with fetcher(max_bytes=100_000) as f, pytest.raises(SourceError) as info:
        f.get(server.url(path))
    assert str(info.value) == (
        f"{server.url(path)}: too large, over 0.1 MB (DIGEST_MAX_PAGE_BYTES)"
    )


def test_a_slow_server_times_out_with_one_line(server: LocalServer) -> None:
    with (
        fetcher(timeout=0.3) as f,
        pytest.raises(SourceError, match=r"/slow: timed out after 0.3 s"),
    ):
        f.get(server.url("/slow"))


@pytest.mark.parametrize(("path", "reason"), [("/missing", "HTTP 404"), ("/gone", "HTTP 410")])
def test_http_errors_name_the_url_and_status(server: LocalServer, path: str, reason: str) -> None:
    with fetcher() as f, pytest.raises(SourceError, match=rf"^{server.url(path)}: {reason}"):
        f.get(server.url(path))


def test_a_refused_connection_is_one_line() -> None:
    with serve({}) as gone:
        url = gone.url("/feed.xml")
    with fetcher(timeout=2) as f, pytest.raises(SourceError, match="could not fetch") as info:
        f.get(url)
    assert str(info.value).startswith(url)
    assert "\n" not in str(info.value)


def test_a_non_http_url_is_refused() -> None:
    with fetcher() as f, pytest.raises(SourceError, match="not an http"):
        f.get("ftp://example.org/feed")


def test_redirects_are_followed_and_the_final_url_reported() -> None:
    # The in-memory twin: httpx.MockTransport stands in for the network here only because
    # http.server has no redirect routing; behaviour is the same client code path.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "https://news.example.org/new"})
        return httpx.Response(200, content=b"moved here", headers={"Content-Type": "text/html"})

    f = Fetcher(
        user_agent="digest/test", timeout=5, max_bytes=1000, transport=httpx.MockTransport(handler)
    )
    with f:
        got = f.get("https://news.example.org/old")
    assert got.url == "https://news.example.org/new"
    assert got.content == b"moved here"


def test_endless_redirects_are_one_line() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://loop.example.org/again"})

    with (
        Fetcher(
            user_agent="t", timeout=5, max_bytes=1000, transport=httpx.MockTransport(handler)
        ) as f,
        pytest.raises(SourceError, match="more than 5 redirects"),
    ):
        f.get("https://loop.example.org/start")
