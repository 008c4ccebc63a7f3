"""The HTML cleaner's two readings: boilerplate regions, the switch, and recovered paragraphs."""

from __future__ import annotations

import lxml.html

from digest.ingest.page_meta import block_texts
from digest.ingest.readings import (
    drop_confident_boilerplate,
    prefer_second,
    recover,
    trigrams,
    without_boilerplate,
    without_hidden,
)

ARTICLE = (
    "The harbour authority voted on Tuesday to reopen the old ferry pier after engineers said "
    "the repairs had held through the spring tides."
)


def _visible(root: lxml.html.HtmlElement) -> str:
    return " ".join(block_texts(root))


def test_regions_that_are_not_the_article_are_dropped() -> None:
    page = lxml.html.document_fromstring(
        "<html><body><header>Site name</header><nav>Home News</nav>"
        f"<main><p>{ARTICLE}</p><aside>Most read today</aside>"
        "<div id='comments'><p>First comment here</p></div>"
        "<div class='newsletter-modal'>Sign up now</div>"
        "<div role='dialog'>Cookie choices</div><dialog>A dialog</dialog>"
        "<p><span aria-hidden='true'>Icon label</span> kept tail</p>"
        "<div style='display: none'>Collapsed section</div><div hidden>Streamed part</div>"
        "</main><footer>Contact us</footer></body></html>"
    )
    body = page.find("body")
    pruned = without_boilerplate(body, article=trigrams([ARTICLE]))
    assert _visible(pruned) == f"{ARTICLE} kept tail Collapsed section Streamed part"
    assert "Site name" in _visible(body)  # the page itself is left alone


def test_hidden_elements_go_unless_they_hold_most_of_the_page() -> None:
    page = lxml.html.document_fromstring(
        f"<html><body><nav>Home</nav><p>{ARTICLE}</p><div class='popup'>Join us today</div>"
        "<div role='tooltip'>A definition</div><span aria-hidden='TRUE'>icon</span>"
        "<div style='display:none'>Collapsed section</div></body></html>"
    )
    assert _visible(without_hidden(page)) == f"Home {ARTICLE} Collapsed section"
    wrapped = lxml.html.document_fromstring(
        f"<html><body><div class='popup-wrapper'><p>{ARTICLE}</p></div></body></html>"
    )
    assert _visible(without_hidden(wrapped)) == ARTICLE


def test_a_region_holding_the_article_stays_whatever_its_tag() -> None:
    page = lxml.html.document_fromstring(
        f"<html><body><nav>Home</nav><aside class='right-col'><p>{ARTICLE}</p></aside>"
        "</body></html>"
    )
    pruned = without_boilerplate(page.find("body"), article=trigrams([ARTICLE]))
    assert _visible(pruned) == ARTICLE
    emptied = without_boilerplate(page.find("body"), article=set())
    assert _visible(emptied) == ""


def test_class_names_match_as_whole_parts_only() -> None:
    page = lxml.html.document_fromstring(
        "<html><body><div class='commentary-box'>An essay</div>"
        "<div class='post-comments-3'>A comment</div></body></html>"
    )
    assert _visible(without_boilerplate(page.find("body"), article=set())) == "An essay"


def test_the_classifier_reading_replaces_a_much_shorter_trafilatura_reading() -> None:
    long = [f"paragraph {n} " + "word " * 30 for n in range(5)]
    assert prefer_second(["a short teaser of ten words and no more than that"], long)
    assert not prefer_second(long[:2], long)
    assert not prefer_second([], ["too few words to trust"])


def test_lines_the_classifier_is_sure_about_are_dropped() -> None:
    scores = {"share this story": 0.02, "a real sentence": 0.9}
    lines = ["Share this story", "A real sentence.", "Unscored line"]
    assert drop_confident_boilerplate(lines, scores) == ["A real sentence.", "Unscored line"]


def test_paragraphs_skipped_in_the_middle_are_put_back_in_place() -> None:
    ours = ["First paragraph of the story is here.", "Third paragraph closes the story well."]
    second = [
        "Sign up for our newsletter today please",
        "First paragraph of the story is here.",
        "Second paragraph from a list trafilatura skipped.",
        "Third paragraph closes the story well.",
        "Related stories you might like to read",
    ]
    assert recover(ours, second) == [ours[0], second[2], ours[1]]


def test_recovered_paragraphs_must_be_new_words() -> None:
    ours = ["First paragraph of the story is here.", "Third paragraph closes the story well."]
    known = "Of the story is here, again."
    new = "A second paragraph nobody had."
    assert recover(ours, [ours[0], known, new, ours[1]]) == [ours[0], new, ours[1]]
    assert recover(ours, []) == ours
    assert recover([], [ours[0], new, ours[1]]) == []
