"""Boilerplate learned across articles of one source: lines that recur are not article text.

A newsletter box, a donation letter or a sign-off that a site prints under every article shows
up verbatim in each of its articles, while the article text never does. :class:`BoilerplateMemory`
counts, per normalised line, how many distinct articles of one source contained it; once a line
has been seen in ``threshold`` articles it is dropped from then on. Pure: loading and saving the
counts is :mod:`digest.store.boilerplate`'s job.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from digest.errors import ExtractionError
from digest.ingest.extract import Extracted

DEFAULT_THRESHOLD = 3
ARTICLE_PREFIX = "article:"  # keys of whole-article fingerprints, kept beside the line keys
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def line_key(line: str) -> str | None:
    """Return the key of a line (hash of its lower-cased words), or None for a line without
    words. Digits are kept: a dated line is a different line."""
    words = _TOKEN.findall(line.lower())
    if not words:
        return None
    return hashlib.sha1(" ".join(words).encode()).hexdigest()


def article_key(lines: Iterable[str]) -> str:
    """Return the fingerprint of a whole article, so observing it twice counts it once."""
    digest = hashlib.sha1("\n".join(lines).encode()).hexdigest()
    return ARTICLE_PREFIX + digest[: 40 - len(ARTICLE_PREFIX)]


@dataclass(slots=True)
class BoilerplateMemory:
    """Per-source counts of articles each line key was seen in.

    ``changed`` holds the keys whose counts moved since loading, for the store to save.
    """

    source_name: str
    threshold: int = DEFAULT_THRESHOLD
    counts: dict[str, int] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    def is_boilerplate(self, line: str) -> bool:
        """Return True when the line was seen in at least ``threshold`` earlier articles."""
        key = line_key(line)
        return key is not None and self.counts.get(key, 0) >= self.threshold

    def observe(self, lines: Iterable[str]) -> bool:
        """Count each distinct line of one article once. Returns False (and counts nothing)
        when this very article was observed before, so re-ingesting it cannot make its own
        text look like boilerplate."""
        lines = list(lines)
        fingerprint = article_key(lines)
        if fingerprint in self.counts:
            return False
        self._bump(fingerprint)
        for key in {k for k in map(line_key, lines) if k is not None}:
            self._bump(key)
        return True

    def recurring(self) -> set[str]:
        """Return the line keys that are boilerplate now."""
        return {
            key
            for key, count in self.counts.items()
            if count >= self.threshold and not key.startswith(ARTICLE_PREFIX)
        }

    def _bump(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        self.changed.add(key)


def forget_learned(article: Extracted, memory: BoilerplateMemory) -> Extracted:
    """Drop the paragraphs this source prints under many of its articles, then count this
    article's paragraphs. Raises ExtractionError when nothing but such boilerplate is left."""
    paragraphs = article.paragraphs
    kept = [p for p in paragraphs if not memory.is_boilerplate(p)]
    memory.observe(paragraphs)
    if not kept:
        raise ExtractionError(
            f"only text that {memory.source_name} repeats under its articles (no article text)"
        )
    return article if len(kept) == len(paragraphs) else replace(article, body="\n\n".join(kept))
