"""sanitize_html keeps article formatting and removes anything active or watching."""

from __future__ import annotations

import unicodedata

import lxml.html
from hypothesis import given
from hypothesis import strategies as st

from digest.ingest.sanitize import is_tracking_pixel, normalise_text, sanitize_html


def test_it_removes_scripts_styles_and_their_content() -> None:
    out = sanitize_html("<p>Kept</p><script>steal()</script><style>p{}</style>")
    assert out == "<p>Kept</p>"


def test_it_removes_event_handlers_but_keeps_the_element() -> None:
    out = sanitize_html('<p onclick="steal()" onmouseover="x()">Text</p>')
    assert out == "<p>Text</p>"


def test_it_removes_javascript_and_data_urls() -> None:
    out = sanitize_html(
        '<a href="javascript:alert(1)">one</a><a href="JaVaScRiPt:x">two</a>'
        '<img src="data:image/png;base64,AAAA" alt="d">'
    )
    assert "javascript" not in out.lower()
    assert "data:" not in out
    assert "one" in out and "two" in out


def test_it_keeps_http_links_and_marks_them_noopener() -> None:
    out = sanitize_html('<a href="https://news.example.org/a">story</a>')
    assert 'href="https://news.example.org/a"' in out
    assert "noopener" in out


def test_it_removes_forms_iframes_and_embeds_with_their_content() -> None:
    out = sanitize_html(
        "<p>Body</p><form action='/x'><input name='email'><button>Sign up</button></form>"
        "<iframe src='https://ads.example.com'>ad</iframe><object data='x'>obj</object>"
    )
    assert out == "<p>Body</p>"


def test_it_removes_one_pixel_images() -> None:
    out = sanitize_html(
        '<p>Body<img src="https://img.example.com/a.jpg" width="1" height="1"></p>'
        '<img src="https://img.example.com/b.gif" height="0" width="0">'
    )
    assert "<img" not in out
    assert "Body" in out


def test_it_removes_beacons_recognised_by_url_shape() -> None:
    out = sanitize_html(
        '<p>Read<img src="https://mail.example.com/wf/open?upn=abc"></p>'
        '<img src="https://stats.example.net/pixel.gif?uid=3">'
        '<img src="https://cdn.example.org/photos/harbour.jpg" alt="Harbour">'
    )
    assert out.count("<img") == 1
    assert "harbour.jpg" in out


def test_it_removes_hidden_images_and_keeps_text_after_them() -> None:
    out = sanitize_html('<img src="https://x.example/a.png" style="display: none">after')
    assert out == "after"


def test_real_photos_are_not_taken_for_pixels() -> None:
    assert not is_tracking_pixel(src="https://cdn.example.org/2024/05/open-day.jpg", width="640")
    assert is_tracking_pixel(src="https://t.example.org/open.gif")
    assert is_tracking_pixel(src="https://cdn.example.org/x.jpg", width="1", height="1")


def test_it_returns_empty_for_blank_input() -> None:
    assert sanitize_html("  \n ") == ""


def test_normalise_text_composes_and_drops_invisible_characters() -> None:
    decomposed = "Cafe\u0301\u200b news\u00a0today\r\nnext\x07"
    assert normalise_text(decomposed) == "Café news today\nnext"


def test_normalise_text_keeps_joiners_inside_non_latin_words() -> None:
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert normalise_text(persian) == persian
    assert normalise_text("a\u200cb") == "ab"


@given(st.text())
def test_normalise_text_is_idempotent_and_nfc(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert unicodedata.is_normalized("NFC", once)


@given(st.text(alphabet=st.sampled_from(list("<>\"'=/ ab:;scriptonerrorjavimg&#x"))))
def test_sanitize_html_never_lets_a_script_or_handler_through(html: str) -> None:
    out = sanitize_html(html)
    if not out.strip():
        return
    for element in lxml.html.fragment_fromstring(out, create_parent="div").iter():
        assert element.tag not in {"script", "iframe", "form"}
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on")
            assert not value.strip().lower().startswith(("javascript:", "data:"))
