"""Render messages: Jinja2 writes MJML, MRML compiles it once, placeholders make it personal.

    render_digest(content, settings=...)            -> Rendered (html/text hold placeholders)
    render_transactional(kind, settings=..., values=...) -> Rendered ("confirm", "goodbye",
                                                        "operator_notice")
    Personaliser(rendered.html, html=True).fill(recipient_values(...))  per recipient

Templates live in ``templates/email/<kind>.{subject,mjml,txt}.j2``; branding comes from settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from digest.errors import CheckFailed, InputError
from digest.render.context import (
    NAME,
    PLACEHOLDERS,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    DigestContent,
    DigestItem,
    Rendered,
    branding,
    digest_context,
    https_url,
    plain_text,
)
from digest.render.mjml import MjmlCompileError, compile_mjml
from digest.render.personalise import (
    Personaliser,
    example_values,
    fill_examples,
    recipient_values,
)
from digest.render.text import LinkList, tidy, wrap
from digest.settings import Settings

__all__ = [
    "NAME",
    "PLACEHOLDERS",
    "PREFERENCES_URL",
    "TRANSACTIONAL_KINDS",
    "UNSUBSCRIBE_URL",
    "DigestContent",
    "DigestItem",
    "MjmlCompileError",
    "Personaliser",
    "Rendered",
    "recipient_values",
    "example_values",
    "fill_examples",
    "render_digest",
    "render_transactional",
]

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "email"

# Gmail clips messages near 102 KB of HTML and hides what follows, the unsubscribe link included.
# The budget keeps a margin, and room for the personal links that replace the placeholders.
HTML_BUDGET = 90 * 1024
PERSONAL_MARGIN = 1024

# Each transactional kind and the values its templates need; URLs among them must be https-able.
TRANSACTIONAL_KINDS: Mapping[str, frozenset[str]] = {
    "confirm": frozenset({"confirm_url"}),
    "goodbye": frozenset({"subscribe_url"}),
    "operator_notice": frozenset({"title", "body"}),
}


@lru_cache(maxsize=4)
def _environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        # MJML is markup: escape everything; subjects and text parts are plain text.
        autoescape=lambda name: name is not None and name.endswith(".mjml.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["wrap"] = wrap
    return env


def _render(name: str, context: Mapping[str, Any]) -> str:
    return _environment(TEMPLATES_DIR).get_template(name).render(context)


def _subject(name: str, context: Mapping[str, Any]) -> str:
    # One line, whatever the template does: a newline in a header would end it.
    return " ".join(_render(name, context).split())


def _message(kind: str, context: dict[str, Any]) -> Rendered:
    subject = _subject(f"{kind}.subject.j2", context)
    if f"{kind}.preheader.j2" in _environment(TEMPLATES_DIR).list_templates():
        context = {**context, "preheader": _subject(f"{kind}.preheader.j2", context)}
    context = {**context, "subject": subject}
    mjml = _render(f"{kind}.mjml.j2", context)
    html = compile_mjml(mjml)
    text = tidy(_render(f"{kind}.txt.j2", {**context, "links": LinkList()}))
    return Rendered(
        subject=subject,
        preheader=str(context.get("preheader", "")),
        mjml=mjml,
        html=html,
        text=text,
    )


def render_digest(content: DigestContent, *, settings: Settings) -> Rendered:
    """Return the digest compiled once: subject, preheader, MJML, HTML and text.

    The HTML and text still contain ``%%UNSUBSCRIBE_URL%%``, ``%%PREFERENCES_URL%%`` and
    ``%%NAME%%``; fill them per recipient with ``Personaliser``. Items without a usable https
    link or title are left out. Raises CheckFailed when the HTML would exceed HTML_BUDGET (the
    message names the item count that fits), MjmlCompileError only on a template bug.
    """
    rendered = _message("digest", digest_context(content, settings=settings))
    size = len(rendered.html.encode("utf-8")) + PERSONAL_MARGIN
    if size > HTML_BUDGET:
        fits = _items_that_fit(content, settings=settings)
        raise CheckFailed(
            f"the digest's HTML would be {size // 1024} KB with {len(content.items)} items, over "
            f"the {HTML_BUDGET // 1024} KB budget (Gmail clips near 102 KB): set "
            f"DIGEST_ITEMS_PER_ISSUE to {fits} or fewer"
        )
    return rendered


def _items_that_fit(content: DigestContent, *, settings: Settings) -> int:
    """The largest item count whose digest stays within the HTML budget (binary search)."""
    low, high = 0, len(content.items)
    while low < high:
        middle = (low + high + 1) // 2
        trial = replace(content, items=content.items[:middle])
        html = compile_mjml(_render("digest.mjml.j2", digest_context(trial, settings=settings)))
        if len(html.encode("utf-8")) + PERSONAL_MARGIN <= HTML_BUDGET:
            low = middle
        else:
            high = middle - 1
    return low


def render_transactional(kind: str, *, settings: Settings, values: Mapping[str, str]) -> Rendered:
    """Return a one-off message (``confirm``, ``goodbye`` or ``operator_notice``).

    ``values`` fill the template directly (these messages go to one person); values whose name
    ends in ``_url`` must be http(s) URLs and come out as https. Raises InputError for an
    unknown kind, a missing value or an unusable URL.
    """
    needed = TRANSACTIONAL_KINDS.get(kind)
    if needed is None:
        known = ", ".join(sorted(TRANSACTIONAL_KINDS))
        raise InputError(f"unknown message kind {kind!r}; use one of: {known}")
    missing = sorted(needed - values.keys())
    if missing:
        raise InputError(f"message {kind!r} needs values for: {', '.join(missing)}")
    cleaned: dict[str, str] = {}
    for key, value in values.items():
        if key.endswith("_url"):
            url = https_url(value, base=settings.base_url)
            if url is None:
                raise InputError(f"message {kind!r}: {key} {value!r} is not an http(s) URL")
            cleaned[key] = url
        else:
            # Keep the paragraphs of a notice body; each is plain text.
            cleaned[key] = "\n\n".join(plain_text(p) for p in value.split("\n\n") if p.strip())
    context: dict[str, Any] = {
        **branding(settings),
        "values": cleaned,
        "preheader": "",
        "from_name": plain_text(settings.from_name),
    }
    return _message(kind, context)
