"""The rendered digest, checked the way a mail client and a spam filter would see it."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from digest.errors import CheckFailed, InputError
from digest.render import (
    NAME,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    DigestItem,
    Personaliser,
    Rendered,
    recipient_values,
    render_digest,
    render_transactional,
)
from digest.render.sample import sample_content
from digest.settings import Settings

RECIPIENT = recipient_values(
    unsubscribe_url="https://news.example.org/u/tok-123?list=friday&x=1",
    preferences_url="https://news.example.org/p/tok-123",
    name="Ada Lovelace",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, base_url="https://news.example.org")


@pytest.fixture
def rendered(settings: Settings) -> Rendered:
    return render_digest(sample_content(12), settings=settings)


class _Tags(HTMLParser):
    """Collects every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def personal_html(rendered: Rendered) -> str:
    return Personaliser(rendered.html, html=True).fill(RECIPIENT)


# --- checks on every rendered digest ----------------------------------------------------------


def test_the_html_of_twelve_items_stays_under_gmails_clipping_size(rendered: Rendered) -> None:
    assert len(personal_html(rendered).encode("utf-8")) < 90 * 1024


def test_every_image_has_alt_text(rendered: Rendered) -> None:
    images = [attrs for tag, attrs in tags(personal_html(rendered)) if tag == "img"]
    assert len(images) >= 8
    assert all(attrs.get("alt") for attrs in images), images


def test_an_image_without_alt_gets_the_headline_as_alt(settings: Settings) -> None:
    item = DigestItem(
        title="Crane count hits a record",
        url="https://example.com/cranes",
        source="Courier",
        section="Science",
        blurb="Many cranes.",
        image_url="https://example.com/crane.jpg",
    )
    content = replace(sample_content(1), items=[item])
    images = [a for t, a in tags(render_digest(content, settings=settings).html) if t == "img"]
    assert [a["alt"] for a in images] == ["Crane count hits a record"]


def test_every_link_and_image_is_absolute_https(rendered: Rendered) -> None:
    urls = [
        value
        for _, attrs in tags(personal_html(rendered))
        for name, value in attrs.items()
        if name in {"href", "src"}
    ]
    assert len(urls) > 30
    assert all(url and url.startswith("https://") for url in urls), urls


def test_plain_http_article_links_are_upgraded_to_https(rendered: Rendered) -> None:
    # Item 1 of the sample has an http link.
    assert "https://news1.example.com/2017/03/01/story" in rendered.html
    assert "http://news1" not in rendered.html and "http://news1" not in rendered.text


def test_no_external_stylesheet_script_or_font_is_loaded(rendered: Rendered) -> None:
    html = rendered.html.lower()
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html


def test_every_link_keeps_its_colour_where_clients_drop_style_blocks(rendered: Rendered) -> None:
    # MRML leaves <mj-style> in a <style> block; Gmail's app drops those for some accounts.
    # Text links only: the anchors MRML wraps around images need no colour.
    links = re.findall(r"<a\b([^>]*)>[^<]+</a>", personal_html(rendered))
    assert len(links) > 25
    assert all('style="color:' in attrs for attrs in links), links


def test_the_footer_carries_address_reason_and_all_three_links(
    rendered: Rendered, settings: Settings
) -> None:
    for part in (personal_html(rendered), Personaliser(rendered.text, html=False).fill(RECIPIENT)):
        assert settings.postal_address in part
        assert settings.footer_text in part
        assert "https://news.example.org/archive/2017-W11" in part
        assert "https://news.example.org/p/tok-123" in part
        assert "https://news.example.org/u/tok-123" in part


def test_the_layout_has_preheader_masthead_top_story_and_sections(rendered: Rendered) -> None:
    html = rendered.html
    assert "A harbour decision, a rail review" in html  # preheader
    assert html.index("The Friday Digest") < html.index("Top story")
    top = html.index("Harbour authority approves the long-delayed tidal barrier")
    for section in ("Politics", "Business", "Science", "World"):
        assert html.index(f">{section}<") > top
    assert html.count("Read more") == 11
    assert "Also reported by The Daily Lantern, Harbour Gazette" in html


def test_the_subject_and_preheader_come_from_the_content(rendered: Rendered) -> None:
    assert rendered.subject == "The tidal barrier gets its green light, and 11 more stories"
    assert rendered.preheader.startswith("A harbour decision")
    assert "<mj-preview>" in rendered.mjml


# --- untrusted article text -------------------------------------------------------------------


def test_html_in_titles_and_blurbs_is_shown_as_text_never_as_markup(settings: Settings) -> None:
    item = DigestItem(
        title='Budget <script>alert("x")</script><b>passes</b> & "wins"',
        url="https://example.com/a",
        source="<i>Courier</i>",
        section="Politics",
        blurb="<img src=x onerror=alert(1)>Members agreed &amp; went home.",
    )
    rendered = render_digest(replace(sample_content(1), items=[item]), settings=settings)
    assert "<script" not in rendered.html and "onerror" not in rendered.html
    assert "<b>passes" not in rendered.html
    assert "Budget passes &amp; &#34;wins&#34;" in rendered.mjml
    assert "Members agreed &amp; went home." in rendered.html
    assert 'Budget passes & "wins"' in rendered.text


def test_article_text_cannot_smuggle_in_a_recipient_placeholder(settings: Settings) -> None:
    item = DigestItem(
        title=f"Click {UNSUBSCRIBE_URL} now",
        url="https://example.com/a",
        source="Courier",
        section="World",
        blurb=f"Dear {NAME}",
    )
    rendered = render_digest(replace(sample_content(1), items=[item]), settings=settings)
    filled = personal_html(rendered)
    assert filled.count("https://news.example.org/u/tok-123") == 1  # the footer link only
    assert "Ada Lovelace" in filled
    assert filled.count("Ada Lovelace") == 1


def test_also_reported_by_names_each_other_outlet_once(settings: Settings) -> None:
    item = DigestItem(
        title="Budget passes", url="https://example.com/a", source="Courier", section="Politics",
        blurb="", also_reported_by=("Lantern", "courier", "Gazette", "Lantern"),
    )  # fmt: skip
    rendered = render_digest(replace(sample_content(1), items=[item]), settings=settings)
    assert "Also reported by Lantern, Gazette<" in rendered.html
    assert "Courier · Also reported by Lantern, Gazette" in rendered.text


def test_items_with_unusable_links_are_left_out(settings: Settings) -> None:
    items = [
        DigestItem(title="Good", url="https://example.com/good", source="A", section="W", blurb=""),
        DigestItem(title="Evil", url="javascript:alert(1)", source="A", section="W", blurb=""),
        DigestItem(title="Data", url="data:text/html,hi", source="A", section="W", blurb=""),
    ]
    rendered = render_digest(replace(sample_content(1), items=items), settings=settings)
    assert "Good" in rendered.html
    assert "Evil" not in rendered.html and "javascript:" not in rendered.html
    assert "Data" not in rendered.html


# --- branding and locale -----------------------------------------------------------------------


def test_branding_comes_from_settings(tmp_path: Path) -> None:
    branded = Settings(
        data_dir=tmp_path,
        base_url="https://news.example.org",
        newsletter_name="Harbour Weekly",
        brand_color="#b03a2e",
        brand_logo_url="https://cdn.example.org/logo.png",
        brand_font="Verdana, Arial, sans-serif",
        footer_text="You asked for harbour news at our open day.",
    )
    rendered = render_digest(sample_content(3), settings=branded)
    assert "#b03a2e" in rendered.html
    assert "Verdana, Arial, sans-serif" in rendered.html
    assert "You asked for harbour news at our open day." in rendered.html
    logos = [a for t, a in tags(rendered.html) if t == "img" and "logo.png" in (a["src"] or "")]
    assert [a["alt"] for a in logos] == ["Harbour Weekly"]


def test_dates_are_formatted_for_the_newsletters_locale(tmp_path: Path) -> None:
    german = Settings(data_dir=tmp_path, base_url="https://news.example.org", locale="de_DE")
    rendered = render_digest(sample_content(2), settings=german)
    assert "Freitag, 17. März 2017" in rendered.html
    assert 'lang="de"' in rendered.html


# --- the plain-text part -------------------------------------------------------------------------


def test_the_text_part_is_wrapped_at_72_columns_except_urls(rendered: Rendered) -> None:
    long_lines = [line for line in rendered.text.splitlines() if len(line) > 72]
    assert all(re.search(r"https://\S{20,}", line) for line in long_lines), long_lines


def test_the_text_part_lists_every_story_link_once_numbered(rendered: Rendered) -> None:
    listed = re.findall(r"^\[(\d+)\] (https://\S+)$", rendered.text, flags=re.MULTILINE)
    assert [int(n) for n, _ in listed] == list(range(1, 13))
    assert len({url for _, url in listed}) == 12
    for number, _ in listed:
        assert rendered.text.count(f"[{number}]") == 2  # cited in the story, listed at the end


def test_the_text_part_is_written_from_data_not_html(rendered: Rendered) -> None:
    assert "<" not in rendered.text and "&amp;" not in rendered.text
    assert "Ferry operator & unions agree a four-day week" in rendered.text


# --- personalisation ---------------------------------------------------------------------


def test_recipient_copies_differ_only_where_the_placeholders_were(rendered: Rendered) -> None:
    personaliser = Personaliser(rendered.html, html=True)
    other = recipient_values(
        unsubscribe_url="https://news.example.org/u/zzz",
        preferences_url="https://news.example.org/p/zzz",
        name="Grace",
    )
    first, second = personaliser.fill(RECIPIENT), personaliser.fill(other)
    assert first != second
    pattern = re.escape(rendered.html)
    for placeholder in (UNSUBSCRIBE_URL, PREFERENCES_URL, NAME):
        pattern = pattern.replace(re.escape(placeholder), ".*?")
    assert re.fullmatch(pattern, first, flags=re.DOTALL)
    assert re.fullmatch(pattern, second, flags=re.DOTALL)


def test_values_are_escaped_for_html_but_not_for_text() -> None:
    values = recipient_values(
        unsubscribe_url="https://x.example/u?a=1&b=2",
        preferences_url="https://x.example/p",
        name='<Bob "B">',
    )
    template = f'<a href="{UNSUBSCRIBE_URL}">Hi {NAME}</a>'
    assert Personaliser(template, html=True).fill(values) == (
        '<a href="https://x.example/u?a=1&amp;b=2">Hi &lt;Bob &quot;B&quot;&gt;</a>'
    )
    assert Personaliser(template, html=False).fill(values) == (
        '<a href="https://x.example/u?a=1&b=2">Hi <Bob "B"></a>'
    )


def test_a_missing_value_is_reported_by_placeholder_name() -> None:
    with pytest.raises(KeyError, match="UNSUBSCRIBE_URL"):
        Personaliser(f"x {UNSUBSCRIBE_URL}", html=True).fill({NAME: "a"})


def test_a_recipient_without_a_name_is_greeted_politely() -> None:
    values = recipient_values(unsubscribe_url="u", preferences_url="p", name="  ")
    assert Personaliser(f"Hello {NAME},", html=False).fill(values) == "Hello there,"


# --- transactional messages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "values", "expected"),
    [
        (
            "confirm",
            {"confirm_url": "https://news.example.org/c/abc"},
            "https://news.example.org/c/abc",
        ),
        ("goodbye", {"subscribe_url": "/subscribe"}, "https://news.example.org/subscribe"),
        ("operator_notice", {"title": "Send paused", "body": "5.7.26 from Gmail."}, "Send paused"),
    ],
)
def test_each_transactional_kind_renders_html_and_text(
    kind: str, values: dict[str, str], expected: str, settings: Settings
) -> None:
    rendered = render_transactional(kind, settings=settings, values=values)
    assert expected in rendered.html and expected in rendered.text
    assert settings.postal_address in rendered.html and settings.postal_address in rendered.text
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.preheader and rendered.preheader in rendered.html


def test_an_unknown_message_kind_is_refused_by_name(settings: Settings) -> None:
    with pytest.raises(InputError, match="unknown message kind 'welcome'"):
        render_transactional("welcome", settings=settings, values={})


def test_a_confirmation_without_its_url_is_refused(settings: Settings) -> None:
    with pytest.raises(InputError, match="confirm_url"):
        render_transactional("confirm", settings=settings, values={})
    with pytest.raises(InputError, match="not an http"):
        render_transactional("confirm", settings=settings, values={"confirm_url": "javascript:x"})


def test_the_issue_date_is_never_todays_date(settings: Settings) -> None:
    # Rendering is pure: the same content gives the same bytes, whenever it runs.
    content = sample_content(4)
    assert render_digest(content, settings=settings) == render_digest(content, settings=settings)
    assert content.issue_date == date(2017, 3, 17)


def test_a_digest_too_large_for_gmail_is_refused_with_the_count_that_fits(
    settings: Settings,
) -> None:
    with pytest.raises(CheckFailed, match=r"set DIGEST_ITEMS_PER_ISSUE to (\d+) or fewer") as info:
        render_digest(sample_content(30), settings=settings)
    fits = int(re.search(r"to (\d+) or fewer", str(info.value)).group(1))  # type: ignore[union-attr]
    assert 12 <= fits < 30
    rendered = render_digest(sample_content(fits), settings=settings)
    assert len(personal_html(rendered).encode("utf-8")) < 90 * 1024
