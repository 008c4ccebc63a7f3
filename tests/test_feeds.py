"""Feeds of every dialect into entries and articles; broken feeds into one clear error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import SourceError
from digest.ingest.feeds import entry_article, parse_feed
from digest.ingest.pages import clean_html

LONG = " ".join(["The pier reopens in June with four crossings a day."] * 12)

RSS2 = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:media="http://search.yahoo.com/mrss/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Westmere Courier</title><link>https://courier.example.org/</link>
<language>en-gb</language>
<item>
  <title>Ferry pier reopens</title>
  <link>https://Courier.example.org/news/pier?utm_source=rss&amp;utm_medium=feed</link>
  <guid isPermaLink="false">pier-1</guid>
  <pubDate>Tue, 14 May 2024 09:30:00 +0200</pubDate>
  <dc:creator>Mara Lindqvist</dc:creator>
  <description>Crossings resume in June.</description>
  <content:encoded><![CDATA[<p>{LONG}</p>
    <img src="https://courier.example.org/pier.jpg" alt="The pier at low tide">
    <p onclick="x()">Second <script>bad()</script>part.</p>
    <img src="https://t.example.net/pixel.gif" width="1" height="1">]]></content:encoded>
  <media:content url="https://courier.example.org/pier.jpg" medium="image"/>
</item>
<item>
  <title>Council meets on Thursday</title>
  <link>https://courier.example.org/news/council</link>
  <description>The council meets on Thursday to discuss the bridge &#8230;</description>
</item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de">
  <title>Hafenblatt</title><id>urn:x</id><updated>2024-05-14T10:00:00Z</updated>
  <entry>
    <title type="html">Fähre &lt;b&gt;fährt&lt;/b&gt; wieder</title>
    <link rel="alternate" href="https://hafen.example.de/faehre#top"/>
    <id>urn:uuid:1</id>
    <updated>2024-05-14T10:00:00Z</updated>
    <published>2024-05-13T22:15:00-01:00</published>
    <author><name>Jonas Berg</name></author>
    <content type="html">&lt;p&gt;Die Fähre fährt ab Juni.&lt;/p&gt;</content>
  </entry>
</feed>"""

RSS1 = """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
  <channel rdf:about="https://courier.example.org/"><title>Courier RDF</title>
    <link>https://courier.example.org/</link><description>d</description></channel>
  <item rdf:about="https://courier.example.org/rdf-item">
    <title>RDF item</title><link>https://courier.example.org/rdf-item</link>
    <description>An item from an RSS 1.0 feed.</description>
  </item>
</rdf:RDF>"""

RSS091 = """<?xml version="1.0"?>
<rss version="0.91"><channel><title>Old feed</title><link>https://old.example.org/</link>
<description>d</description><language>en</language>
<item><title>Old item</title><link>https://old.example.org/item</link>
<description>From a very old feed.</description></item>
</channel></rss>"""


def test_it_reads_rss2_with_full_content() -> None:
    feed = parse_feed(RSS2.encode(), url="https://courier.example.org/feed")
    assert feed.title == "Westmere Courier"
    assert feed.language == "en"
    first, second = feed.entries
    assert first.title == "Ferry pier reopens"
    assert first.url == "https://courier.example.org/news/pier"
    assert first.published == datetime(2024, 5, 14, 7, 30, tzinfo=UTC)
    assert first.author == "Mara Lindqvist"
    assert first.image_url == "https://courier.example.org/pier.jpg"
    assert first.image_alt == "The pier at low tide"
    assert not first.is_teaser
    assert second.is_teaser


def test_entry_content_is_sanitised() -> None:
    entry = parse_feed(RSS2.encode(), url="https://courier.example.org/feed").entries[0]
    assert entry.content_html is not None
    assert "onclick" not in entry.content_html
    assert "<script" not in entry.content_html and "bad()" not in entry.content_html
    assert "pixel.gif" not in entry.content_html
    assert entry.paragraphs[-1] == "Second part."


def test_it_reads_atom_with_html_titles_and_offsets() -> None:
    feed = parse_feed(ATOM.encode(), url="https://hafen.example.de/atom")
    (entry,) = feed.entries
    assert entry.title == "Fähre fährt wieder"
    assert entry.url == "https://hafen.example.de/faehre"
    assert entry.published == datetime(2024, 5, 13, 23, 15, tzinfo=UTC)
    assert entry.author == "Jonas Berg"
    assert entry.language == "de"
    assert entry.paragraphs == ["Die Fähre fährt ab Juni."]


@pytest.mark.parametrize("document", [RSS1, RSS091])
def test_it_reads_rss1_and_rss091(document: str) -> None:
    feed = parse_feed(document.encode(), url="https://courier.example.org/old")
    (entry,) = feed.entries
    assert entry.url and entry.url.startswith("https://")
    assert entry.summary


def test_an_entry_becomes_an_article() -> None:
    entry = parse_feed(RSS2.encode(), url="https://courier.example.org/feed").entries[0]
    article = entry_article(entry)
    assert article.title == "Ferry pier reopens"
    assert article.body.startswith("The pier reopens in June")
    assert article.paragraphs[-1] == "Second part."
    assert article.url == "https://courier.example.org/news/pier"
    assert article.summary == "Crossings resume in June."


def test_a_teaser_is_completed_from_the_linked_page() -> None:
    teaser = parse_feed(RSS2.encode(), url="https://courier.example.org/feed").entries[1]
    paragraph = "The council will discuss the bridge repairs and the harbour budget. " * 3
    page = clean_html(
        f"<html><head><title>Council</title></head><body><article><h1>Council</h1>"
        f"<p>{paragraph}</p><p>{paragraph}</p></article></body></html>"
    )
    article = entry_article(teaser, page=page)
    assert article.title == "Council meets on Thursday"
    assert article.body == page.body
    assert article.url == "https://courier.example.org/news/council"


def test_a_valid_feed_without_entries_is_empty_not_an_error() -> None:
    empty = '<?xml version="1.0"?><rss version="2.0"><channel><title>E</title></channel></rss>'
    assert parse_feed(empty.encode(), url="https://e.example.org/feed").entries == []


@pytest.mark.parametrize(
    "data",
    [
        RSS2[:120].encode(),  # truncated before any item
        b"<html><body><p>Not a feed</p></body></html>",
        b"\x00\x01\x02binary",
        b"",
    ],
)
def test_what_is_not_a_feed_gives_one_line_naming_it(data: bytes) -> None:
    with pytest.raises(SourceError, match=r"^feed https://bad\.example\.org/feed: ") as info:
        parse_feed(data, url="https://bad.example.org/feed")
    assert "\n" not in str(info.value)


def test_a_truncated_feed_keeps_the_entries_it_could_read() -> None:
    cut = RSS2[: RSS2.index("<item>", RSS2.index("</item>"))] + "<item><title>Half"
    feed = parse_feed(cut.encode(), url="https://courier.example.org/feed")
    assert [e.title for e in feed.entries][:1] == ["Ferry pier reopens"]
    assert feed.problem


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_give_entries_or_one_source_error(data: bytes) -> None:
    try:
        feed = parse_feed(RSS2[:60].encode() + data, url="https://fuzz.example.org/feed")
    except SourceError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(entry.title or entry.url for entry in feed.entries)
