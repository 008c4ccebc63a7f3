"""Near-duplicate articles: the same wire story on two sites, or a lightly edited update.

A signature is a MinHash over word 5-shingles of an article's title and lead; the share of equal
positions in two signatures estimates the Jaccard similarity of their shingle sets. The index
uses locality-sensitive hashing so that finding the earlier article a new one repeats does not
compare it with every article of the week.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Literal

from datasketch import MinHash, MinHashLSH

from digest.ingest.sanitize import normalise_text

NUM_PERM = 64
SHINGLE = 5
# Estimated Jaccard of 5-shingles at or above which two articles count as one story. A copy with
# a new headline and a few changed words stays above it; two stories on one topic share phrases
# but rarely a third of their 5-word runs.
THRESHOLD = 0.5
LEAD_CHARS = 2000
_SEED = 1  # fixed so signatures stored in the database stay comparable across runs
# Named explicitly: datasketch changed its default scheme in 2.0, and stored signatures must
# keep meaning the same thing.
_SCHEME: Literal["affine32"] = "affine32"
_WORD = re.compile(r"\w+", re.UNICODE)


def lead_text(*, title: str, body: str) -> str:
    """The text a signature is computed from: the title and the start of the body."""
    return f"{title}\n{body[:LEAD_CHARS]}"


def shingles(text: str, *, size: int = SHINGLE) -> set[str]:
    """Word ``size``-shingles of normalised, case-folded text (one shingle when shorter)."""
    words = _WORD.findall(normalise_text(text).casefold())
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def _minhash(text: str) -> MinHash:
    mh = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME)
    mh.update_batch([s.encode("utf-8") for s in shingles(text)])
    return mh


def signature(text: str) -> list[int]:
    """Return the MinHash signature of ``text``: ``NUM_PERM`` integers below 2**32."""
    return [int(v) for v in _minhash(text).hashvalues]


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity (0..1) of the shingle sets behind two signatures.

    Raises ValueError when the signatures have different lengths (made with other settings).
    """
    if len(a) != len(b):
        raise ValueError(f"signatures differ in length ({len(a)} vs {len(b)})")
    if not a:
        return 0.0
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / len(a)


def _from_signature(sig: Sequence[int]) -> MinHash:
    import numpy as np

    return MinHash(
        num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME, hashvalues=np.array(sig, dtype=np.uint64)
    )


class NearDupIndex:
    """Signatures by key, searchable for near-duplicates.

    ``add`` in the order articles arrived; ``find`` returns the earliest-added key whose
    similarity reaches the threshold, so a chain of repeats links to the first telling.
    """

    def __init__(self, *, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        # The LSH band layout is tuned a little below the threshold so that pairs just above it
        # are found; ``find`` then checks the real estimate.
        self._lsh = MinHashLSH(threshold=max(0.1, threshold - 0.1), num_perm=NUM_PERM)
        self._signatures: dict[Hashable, list[int]] = {}
        self._order: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._signatures)

    def __contains__(self, key: object) -> bool:
        return key in self._signatures

    def add(self, key: Hashable, sig: Sequence[int]) -> None:
        """Index ``sig`` under ``key``; adding a key twice replaces nothing and is ignored."""
        if key in self._signatures or len(sig) != NUM_PERM:
            return
        self._signatures[key] = list(sig)
        self._order[key] = len(self._order)
        self._lsh.insert(key, _from_signature(sig))

    def matches(self, sig: Sequence[int]) -> list[tuple[Hashable, float]]:
        """Every indexed key at or above the threshold, with its similarity, earliest first."""
        if len(sig) != NUM_PERM:
            return []
        found = []
        for key in self._lsh.query(_from_signature(sig)):
            score = similarity(sig, self._signatures[key])
            if score >= self.threshold:
                found.append((key, score))
        return sorted(found, key=lambda pair: self._order[pair[0]])

    def find(self, sig: Sequence[int], *, exclude: Hashable | None = None) -> Hashable | None:
        """The earliest-added key that ``sig`` repeats, or None. ``exclude`` skips a key (the
        article itself, when it is being re-ingested)."""
        for key, _score in self.matches(sig):
            if key != exclude:
                return key
        return None
