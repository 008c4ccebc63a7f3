"""Article pages into clean articles: body, metadata and every kind of bad page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import ExtractionError
from digest.ingest.pages import clean_html, clean_page, decode_html, fragment_paragraphs

PARAGRAPHS = [
    "The harbour authority in Westmere voted on Tuesday to reopen the old ferry pier, closed "
    "since a storm cracked its pilings three winters ago, after engineers said the repairs "
    "had held through the spring tides.",
    "The first crossing to the island will leave at seven in the morning on the first Monday "
    "of June, the authority said, with four return trips a day until the end of September "
    "and two a day through the winter months.",
    "Island shopkeepers, who have relied on a single cargo boat since the closure, said the "
    "reopening would bring back the day visitors who once filled the cafés along the quay "
    "and kept the small bakery open all year.",
    "The repairs cost a little over two million, most of it paid by the regional fund for "
    "coastal infrastructure, and took eleven months longer than planned because divers found "
    "more damage below the waterline than the first survey had shown.",
    "Ticket prices will stay at last year's level for the first season, the authority added, "
    "and residents of the island will keep their discount card without having to apply again.",
]


def article_page(
    *,
    lang: str = "en",
    charset_meta: str = '<meta charset="utf-8">',
    extra_body: str = "",
    tail: str = "",
) -> str:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head>{charset_meta}
<title>Ferry pier reopens after three years | The Westmere Courier</title>
<link rel="canonical" href="https://Courier.example.org/news/ferry-pier?utm_source=x">
<meta property="og:title" content="Ferry pier reopens after three years">
<meta property="og:site_name" content="The Westmere Courier">
<meta property="og:image" content="/images/pier.jpg">
<meta property="og:image:alt" content="The repaired ferry pier at low tide">
<meta property="og:description" content="Crossings to the island resume in June.">
<meta name="author" content="Mara Lindqvist">
<meta property="article:published_time" content="2024-05-14T09:30:00+02:00">
<script>window.tracker = 1;</script>
</head><body>
<nav><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a></nav>
<article>
<h1>Ferry pier reopens after three years</h1>
<figure><img src="/images/pier.jpg" alt="The repaired pier">
<figcaption>The pier at low tide. <span class="credit">Photo: Jonas Berg / Courier</span>
</figcaption></figure>
{body}
{extra_body}
</article>
{tail}
<footer><p>© The Westmere Courier. All rights reserved.</p></footer>
</body></html>"""


def test_it_extracts_the_body_paragraphs_in_order() -> None:
    result = clean_html(article_page(), url="https://courier.example.org/news/ferry-pier")
    assert result.paragraphs == PARAGRAPHS


def test_it_reads_the_metadata() -> None:
    result = clean_html(article_page(), url="https://courier.example.org/news/ferry-pier")
    assert result.title == "Ferry pier reopens after three years"
    assert result.author == "Mara Lindqvist"
    assert result.published == datetime(2024, 5, 14, 7, 30, tzinfo=UTC)
    assert result.url == "https://Courier.example.org/news/ferry-pier?utm_source=x"
    assert result.image_url == "https://courier.example.org/images/pier.jpg"
    assert result.image_alt == "The repaired ferry pier at low tide"
    assert result.language == "en"
    assert result.summary == "Crossings to the island resume in June."


def test_it_moves_the_photo_credit_out_of_the_body() -> None:
    result = clean_html(article_page())
    assert result.credit == "Jonas Berg / Courier"
    assert "Jonas Berg" not in result.body
    assert "low tide" not in result.body


def test_it_drops_trailing_related_and_newsletter_sections() -> None:
    tail = (
        "<section><h2>Related stories</h2><ul>"
        "<li><a href='/a'>Council approves new harbour wall after long debate</a></li>"
        "<li><a href='/b'>Ferry company names its new boat after a local teacher</a></li>"
        "</ul></section>"
        "<div><h3>Sign up for our newsletter</h3><p>Get the week's island news in your inbox "
        "every Friday morning.</p></div>"
    )
    result = clean_html(article_page(extra_body=tail))
    assert "Related stories" not in result.body
    assert "new harbour wall" not in result.body
    assert "newsletter" not in result.body.lower()
    assert result.paragraphs[-1] == PARAGRAPHS[-1]


def test_it_drops_read_more_cross_links_inside_the_article() -> None:
    link = "<p>Read more: <a href='/c'>How the storm closed the pier</a></p>"
    page = article_page().replace(f"<p>{PARAGRAPHS[2]}</p>", f"{link}<p>{PARAGRAPHS[2]}</p>")
    result = clean_html(page)
    assert "How the storm closed the pier" not in result.body
    assert result.paragraphs == PARAGRAPHS


def test_a_long_comment_thread_does_not_replace_the_article() -> None:
    comment = (
        "<li class='comment'><p>I grew up on the island and I remember the old crossing well, "
        "the queue of cars on the quay every Saturday morning and the smell of diesel and fish. "
        "It is good news that the boats will run again, though I wonder who pays {n}.</p></li>"
    )
    thread = "".join(comment.format(n=n) for n in range(12))
    page = article_page(tail=f"<section id='comments'><h2>Comments</h2><ol>{thread}</ol></section>")
    result = clean_html(page)
    assert result.paragraphs == PARAGRAPHS


def test_a_dialog_inside_the_article_is_not_read_as_article_text() -> None:
    dialog = (
        "<div class='republish-modal' role='dialog'><p>You are welcome to republish this story "
        "for free on your own website under our licence, as long as you credit the reporter and "
        "keep every link in the text exactly as it appears on our own pages.</p></div>"
    )
    page = article_page().replace(f"<p>{PARAGRAPHS[3]}</p>", f"{dialog}<p>{PARAGRAPHS[3]}</p>")
    result = clean_html(page)
    assert result.paragraphs == PARAGRAPHS


def test_it_keeps_going_through_malformed_markup() -> None:
    page = article_page().replace("</p>", "", 3).replace("</article>", "<div><span>")
    result = clean_html(page)
    assert PARAGRAPHS[0] in result.body
    assert PARAGRAPHS[-1] in result.body


def test_it_decodes_a_page_whose_charset_is_missing() -> None:
    data = article_page(charset_meta="").encode("cp1252")
    result = clean_page(data)
    assert "cafés" in result.body


def test_it_believes_a_declared_charset_and_the_http_header() -> None:
    page = article_page(charset_meta='<meta charset="iso-8859-1">')
    assert "cafés" in decode_html(page.encode("latin-1"))
    assert "cafés" in decode_html(article_page().encode("utf-16"))
    assert "caf" in decode_html(page.encode("latin-1"), charset="no-such-charset")


def test_it_replaces_bytes_that_do_not_decode() -> None:
    data = article_page().encode("utf-8") + b"\xff\xfe\x80"
    assert decode_html(data).endswith("\u00ff\u00fe\u20ac")


def test_it_refuses_a_page_over_the_size_limit_naming_the_limit() -> None:
    huge = article_page(extra_body="<p>" + "padding words " * 4_000_000 + "</p>")
    with pytest.raises(ExtractionError, match=r"over the limit of 5\.0 MB.*MAX_PAGE_BYTES"):
        clean_html(huge, url="https://courier.example.org/huge")
    with pytest.raises(ExtractionError, match="limit"):
        clean_page(huge.encode(), url="https://courier.example.org/huge")


@pytest.mark.parametrize(
    "page",
    ["", "   \n", "<html><body><nav><a href='/'>Home</a></nav></body></html>"],
)
def test_it_refuses_a_page_without_article_text(page: str) -> None:
    with pytest.raises(ExtractionError, match="page https://courier.example.org/x"):
        clean_html(page, url="https://courier.example.org/x")


def test_it_refuses_a_page_in_a_language_not_accepted() -> None:
    with pytest.raises(ExtractionError, match="language 'de'"):
        clean_html(article_page(lang="de-DE"), languages={"en"})
    assert clean_html(article_page(lang="de-DE"), languages={"en", "de"}).language == "de"


def test_binary_bytes_give_one_clear_error() -> None:
    with pytest.raises(ExtractionError):
        clean_page(bytes(range(256)) * 50)


def test_fragment_paragraphs_splits_blocks() -> None:
    html = "<p>One <b>bold</b> line.</p><div>Two<br>Three</div><script>x()</script>"
    assert fragment_paragraphs(html) == ["One bold line.", "Two", "Three"]
    assert fragment_paragraphs("plain text\n\nsecond") == ["plain text", "second"]
    assert fragment_paragraphs("") == []


_MARKUP = st.lists(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<div>",
            "<html>",
            "<body>",
            "<meta charset=x>",
            "<script>",
            "<title>",
            "<h1>",
            "<br>",
            "&amp;",
            "&#0;",
            "é",
            " ",
            "\n",
            "word ",
            "Harbour ferry ",
            "\x00",
        ]
    ),
    max_size=120,
).map("".join)


@settings(max_examples=60, deadline=None)
@given(_MARKUP)
def test_any_markup_gives_an_article_or_one_extraction_error(html: str) -> None:
    try:
        result = clean_html(html, url="https://courier.example.org/x")
    except ExtractionError as exc:
        assert "\n" not in str(exc)
    else:
        assert result.body.strip()


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_an_article_or_one_extraction_error(data: bytes) -> None:
    try:
        clean_page(data)
    except ExtractionError as exc:
        assert "\n" not in str(exc)
