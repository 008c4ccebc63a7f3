"""The plain-text part, written from the same data as the HTML (never scraped from it).

Paragraphs are wrapped at 72 columns; URLs are never broken, and each link is numbered in the
text and listed in full at the end, so it reads well in a plain mail client.
"""

from __future__ import annotations

import re
import textwrap

WIDTH = 72

_BLANK_RUNS = re.compile(r"\n{3,}")


def wrap(text: str, width: int = WIDTH, indent: str = "", first: str | None = None) -> str:
    """Return ``text`` wrapped at ``width`` columns; long words (URLs) stay whole on their line."""
    return textwrap.fill(
        " ".join(text.split()),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class LinkList:
    """Numbers links in the order the text mentions them; the same URL keeps its number."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def ref(self, url: str) -> str:
        """Return the marker ``[n]`` for ``url``, numbering it on first use."""
        number = self._numbers.setdefault(url, len(self._numbers) + 1)
        return f"[{number}]"

    def listed(self) -> list[tuple[int, str]]:
        """Return ``(number, url)`` pairs in number order."""
        return [(n, url) for url, n in self._numbers.items()]


def tidy(text: str) -> str:
    """Return ``text`` with trailing spaces removed, blank runs cut to one, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)) + "\n"
