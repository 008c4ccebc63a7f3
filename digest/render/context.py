"""What a digest is made of, and the template context built from it (pure: data in, data out).

Article text reaching a message is untrusted: titles and blurbs are plain text, so anything
HTML-ish is stripped to its text here and escaped again by the templates. Links are made
absolute ``https`` (mail clients warn on or block plain ``http`` images and links); a link that
cannot be made safe is dropped rather than shown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import nh3
from babel.dates import format_date

from digest.settings import Settings

UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
NAME = "%%NAME%%"
PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL, NAME)


@dataclass(frozen=True, slots=True)
class DigestItem:
    title: str
    url: str
    source: str
    section: str
    blurb: str
    image_url: str | None = None
    image_alt: str | None = None
    also_reported_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DigestContent:
    subject: str
    preheader: str
    week: str
    issue_date: date
    items: Sequence[DigestItem]
    web_url: str  # the issue's public archive URL


@dataclass(frozen=True, slots=True)
class Rendered:
    """One message, compiled once; ``html`` and ``text`` still contain the placeholders."""

    subject: str
    preheader: str
    mjml: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class Card:
    """One item as the templates see it: plain text, safe absolute links."""

    title: str
    url: str
    source: str
    blurb: str
    image_url: str | None
    image_alt: str
    also_reported_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    cards: tuple[Card, ...]


_TAG_HINT = re.compile(r"<[a-zA-Z/!]|&[#a-zA-Z0-9]+;")
_SPACE = re.compile(r"\s+")


def plain_text(value: str | None) -> str:
    """Return ``value`` as one line of plain text: tags dropped, entities decoded, spaces collapsed.

    A literal ``%%`` is broken with a word joiner so article text can never smuggle in a
    per-recipient placeholder such as ``%%UNSUBSCRIBE_URL%%``.
    """
    if not value:
        return ""
    text = value
    if _TAG_HINT.search(text):
        # nh3 keeps the text of harmless tags, drops <script>/<style> bodies, and escapes the
        # rest; decoding once afterwards gives the plain text the templates escape again.
        text = html.unescape(nh3.clean(text, tags=set()))
    text = _SPACE.sub(" ", text).strip()
    return text.replace("%%", "%\u2060%")


def https_url(url: str | None, *, base: str) -> str | None:
    """Return ``url`` as an absolute https URL (relative ones resolved against ``base``), or None.

    ``http`` is upgraded: every outlet in the corpus serves https, and clients flag plain http.
    Other schemes (``javascript:``, ``data:``, ``mailto:``) give None.
    """
    if not url:
        return None
    candidate = url.strip()
    parts = urlsplit(candidate)
    if not parts.scheme:
        parts = urlsplit(urljoin(base.rstrip("/") + "/", candidate))
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    if any(ch.isspace() for ch in candidate) or '"' in candidate or "%%" in candidate:
        return None
    return urlunsplit(("https", parts.netloc, parts.path, parts.query, parts.fragment))


def card(item: DigestItem, *, base: str) -> Card | None:
    """Return the template's view of ``item``, or None when it has no usable link or title."""
    url = https_url(item.url, base=base)
    title = plain_text(item.title)
    if url is None or not title:
        return None
    image = https_url(item.image_url, base=base)
    alt = plain_text(item.image_alt) or title
    source = plain_text(item.source)
    # Each other outlet once, never the item's own outlet.
    seen = {source.casefold()}
    sources: list[str] = []
    for name in (plain_text(n) for n in item.also_reported_by):
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            sources.append(name)
    return Card(
        title=title,
        url=url,
        source=source,
        blurb=plain_text(item.blurb),
        image_url=image,
        image_alt=alt,
        also_reported_by=tuple(sources),
    )


def sections(cards: Sequence[tuple[str, Card]], *, order: Sequence[str]) -> tuple[Section, ...]:
    """Group cards by section: sections named in ``order`` first, the rest as they first appear."""
    grouped: dict[str, list[Card]] = {}
    for name, one in cards:
        grouped.setdefault(name, []).append(one)
    rank = {name.casefold(): i for i, name in enumerate(order)}
    names = sorted(grouped, key=lambda n: rank.get(n.casefold(), len(rank)))
    return tuple(Section(name=n, cards=tuple(grouped[n])) for n in names)


def branding(settings: Settings) -> dict[str, Any]:
    """The branding values every template gets, taken from settings only."""
    color = (
        settings.brand_color
        if re.fullmatch(r"#[0-9a-fA-F]{3,8}", settings.brand_color)
        else "#1a5276"
    )
    return {
        "newsletter_name": plain_text(settings.newsletter_name),
        "brand_color": color,
        "brand_font": plain_text(settings.brand_font).replace('"', "'"),
        "logo_url": https_url(settings.brand_logo_url, base=settings.base_url),
        "footer_text": plain_text(settings.footer_text),
        "postal_address": plain_text(settings.postal_address),
        "base_url": settings.base_url,
        "lang": settings.locale.split("_")[0] or "en",
    }


def week_label(week: str) -> str:
    """``2017-W11`` → ``Week 11``; anything else unchanged."""
    match = re.fullmatch(r"(\d{4})-W(\d{1,2})", week)
    return f"Week {int(match.group(2))}" if match else plain_text(week)


def digest_context(content: DigestContent, *, settings: Settings) -> dict[str, Any]:
    """Return the Jinja context of a digest: the top story, sections of cards, branding, dates."""
    base = settings.base_url
    kept = [(item, c) for item in content.items if (c := card(item, base=base))]
    top = kept[0][1] if kept else None
    rest = [(plain_text(item.section) or "More", c) for item, c in kept[1:]]
    web_url = https_url(content.web_url, base=base) or base
    return {
        **branding(settings),
        "subject": plain_text(content.subject),
        "preheader": plain_text(content.preheader),
        "week": week_label(content.week),
        "issue_date": format_date(content.issue_date, format="full", locale=settings.locale),
        "top": top,
        "sections": sections(rest, order=settings.section_order),
        "web_url": web_url,
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "name": NAME,
    }
