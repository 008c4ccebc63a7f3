"""Canonical URLs and article keys: one story, one key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import InputError
from digest.ingest.canonical import article_key, canonical_url, content_hash


def test_it_lowercases_scheme_and_host_but_keeps_path_case() -> None:
    assert canonical_url("HTTPS://News.Example.ORG/World/Story-A") == (
        "https://news.example.org/World/Story-A"
    )


def test_it_drops_default_ports_and_keeps_others() -> None:
    assert canonical_url("https://example.org:443/a") == "https://example.org/a"
    assert canonical_url("http://example.org:80/a") == "http://example.org/a"
    assert canonical_url("http://example.org:8080/a") == "http://example.org:8080/a"


def test_it_drops_the_fragment_and_user_info() -> None:
    assert canonical_url("https://user:pw@example.org/a#comments") == "https://example.org/a"


def test_it_removes_tracking_parameters() -> None:
    url = (
        "https://example.org/story?utm_source=rss&utm_medium=feed&fbclid=abc&gclid=x"
        "&mc_cid=1&mc_eid=2&igshid=z&ref=homepage&id=42"
    )
    assert canonical_url(url) == "https://example.org/story?id=42"


def test_it_sorts_the_remaining_query_parameters() -> None:
    assert canonical_url("https://example.org/s?b=2&a=1&c=") == "https://example.org/s?a=1&b=2&c="


def test_it_gives_an_empty_path_a_slash() -> None:
    assert canonical_url("https://Example.org") == "https://example.org/"


def test_it_encodes_international_hosts_as_punycode() -> None:
    assert canonical_url("https://Bücher.example/a") == "https://xn--bcher-kva.example/a"


def test_percent_encoding_is_stable() -> None:
    assert canonical_url("https://example.org/caf%C3%A9 au lait") == canonical_url(
        "https://example.org/café%20au%20lait"
    )


@pytest.mark.parametrize("bad", ["", "/relative/path", "ftp://example.org/x", "mailto:a@b.c"])
def test_it_rejects_what_is_not_an_http_url(bad: str) -> None:
    with pytest.raises(InputError, match="URL"):
        canonical_url(bad)


def test_article_key_is_the_canonical_url_when_there_is_one() -> None:
    key = article_key(url="https://Example.org/a?utm_source=x", title="T", body="B")
    assert key == "https://example.org/a"


def test_article_key_hashes_the_text_without_a_url() -> None:
    one = article_key(url=None, title="Harbour reopens", body="The harbour reopened on Monday.")
    two = article_key(url="", title="  harbour REOPENS ", body="The harbour\n reopened on Monday.")
    other = article_key(url=None, title="Harbour reopens", body="The harbour stayed shut.")
    assert one.startswith("sha256:")
    assert one == two
    assert one != other


def test_content_hash_changes_when_the_text_changes() -> None:
    assert content_hash("A  b") == content_hash("a b")
    assert content_hash("a b") != content_hash("a c")


urls = st.builds(
    lambda host, path, params, frag: f"https://{host}/{path}?{params}#{frag}",
    st.sampled_from(["Example.org", "news.example.ORG", "a.example"]),
    st.text(alphabet="abcXYZ-_/0123", max_size=20),
    st.lists(
        st.tuples(
            st.sampled_from(["id", "utm_x", "page", "fbclid", "q"]), st.text("ab1", max_size=3)
        ),
        max_size=4,
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
    st.text(alphabet="abc", max_size=5),
)


@given(urls)
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert "utm_" not in once and "fbclid" not in once and "#" not in once
