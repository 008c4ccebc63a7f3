"""Per-recipient copies of a message compiled once: placeholders filled, nothing re-rendered.

The template is split on the placeholders once per issue and part; ``fill`` is then a join of
constant strings and the recipient's values, the send loop's hot path.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from digest.render.context import NAME, PLACEHOLDERS, PREFERENCES_URL, UNSUBSCRIBE_URL

_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")

# Shown where a recipient has no name on record: "Hello there," rather than "Hello ,".
ANONYMOUS_NAME = "there"


class Personaliser:
    """Fills ``%%UNSUBSCRIBE_URL%%``, ``%%PREFERENCES_URL%%`` and ``%%NAME%%`` into one template."""

    __slots__ = ("_html", "_parts", "_slots", "placeholders")

    def __init__(self, template: str, *, html: bool) -> None:
        pieces = _SPLIT.split(template)
        # Even positions are constant text, odd positions placeholder names.
        self._parts: list[str] = pieces
        self._slots: list[tuple[int, str]] = [(i, pieces[i]) for i in range(1, len(pieces), 2)]
        self._html = html
        self.placeholders: frozenset[str] = frozenset(name for _, name in self._slots)

    def fill(self, values: Mapping[str, str]) -> str:
        """Return the template with every placeholder replaced by ``values[placeholder]``.

        Values are HTML-escaped (quotes too: URLs land in ``href``) when the template is HTML.
        Raises KeyError naming the placeholder when ``values`` lacks one the template uses.
        """
        parts = self._parts.copy()
        escape = self._html
        for index, name in self._slots:
            value = values[name]
            parts[index] = html.escape(value, quote=True) if escape else value
        return "".join(parts)


def recipient_values(
    *, unsubscribe_url: str, preferences_url: str, name: str = ""
) -> dict[str, str]:
    """Return the placeholder values of one recipient, with a friendly stand-in for no name."""
    return {
        UNSUBSCRIBE_URL: unsubscribe_url,
        PREFERENCES_URL: preferences_url,
        NAME: " ".join(name.split()) or ANONYMOUS_NAME,
    }


def example_values(*, base_url: str) -> dict[str, str]:
    """Stand-ins for the per-recipient placeholders in previews and the public archive."""
    return {
        UNSUBSCRIBE_URL: f"{base_url}/u/preview",
        PREFERENCES_URL: f"{base_url}/p/preview",
        NAME: "there",
    }


def fill_examples(part: str, *, base_url: str, html_part: bool) -> str:
    """One part of an issue with the example values filled in (HTML-escaped in HTML)."""
    return Personaliser(part, html=html_part).fill(example_values(base_url=base_url))
