"""Stories, not items: articles about the same event are grouped into one story.

Each article is a TF-IDF vector of its title (counted twice) and lead. Two articles join the same
story when ingestion linked them as near-duplicates (``duplicate_of``) or when their cosine
similarity is at least ``pair_threshold`` *and* the two groups they belong to are, on average,
at least ``link_threshold`` alike. The second test (an average-link check on a few members of
each side) stops single-link chaining: "Trump" stories would otherwise snowball into one.

Candidate pairs come from shared distinctive terms (two or more of each article's twelve
heaviest terms that are not in more than a few per cent of the week's articles), then get their
exact cosine. That keeps 10,000 candidates to seconds instead of a 50-million-pair product.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from digest.select import Candidate

LEAD_CHARS = 400
PAIR_THRESHOLD = 0.40
LINK_THRESHOLD = 0.28
TOP_TERMS = 12
MIN_SHARED = 2
LINK_SAMPLE = 4
PAIR_CHUNK = 200_000

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself said says say told tells
    according mr ms mrs one two new year years week day monday tuesday wednesday thursday friday
    saturday sunday last first people time may many much even still like get got make made us
    via per since however yet would"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def tokens(text: str) -> list[str]:
    """Lower-case content words of ``text`` (stopwords, possessives and 1-letter words dropped)."""
    words = (w.removesuffix("'s") for w in _WORD.findall(text.lower()))
    return [w for w in words if len(w) > 1 and w not in STOPWORDS]


def lead_of(candidate: Candidate, *, chars: int = LEAD_CHARS) -> str:
    """The text that says what the article is about: teaser (if any) and the body's start."""
    parts = [candidate.summary or "", candidate.body[:chars]]
    return " ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Clustering:
    """Stories over a list of candidates (all indices point into that list)."""

    stories: list[list[int]]  # member indices, ascending; stories ordered by their first member
    story_of: list[int]  # candidate index -> story index
    vectors: sparse.csr_matrix  # L2-normalised TF-IDF rows, one per candidate

    def centroids(self, story_ids: Sequence[int]) -> sparse.csr_matrix:
        """L2-normalised mean vectors of the given stories, one row each, in the given order."""
        rows, cols = [], []
        for row, sid in enumerate(story_ids):
            for member in self.stories[sid]:
                rows.append(row)
                cols.append(member)
        membership = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(story_ids), self.vectors.shape[0])
        )
        return _normalise(membership @ self.vectors)


def vectorise(candidates: Sequence[Candidate]) -> sparse.csr_matrix:
    """TF-IDF (sublinear tf, smoothed idf) of title x2 + lead; rows L2-normalised."""
    vocab: dict[str, int] = {}
    indptr: list[int] = [0]
    indices: list[int] = []
    counts: list[int] = []
    for c in candidates:
        row = Counter(
            vocab.setdefault(w, len(vocab)) for w in tokens(c.title) * 2 + tokens(lead_of(c))
        )
        terms = sorted(row)
        indices.extend(terms)
        counts.extend(row[t] for t in terms)
        indptr.append(len(indices))
    n = len(candidates)
    columns = np.array(indices, dtype=np.int64)
    df = np.bincount(columns, minlength=len(vocab))
    idf = np.log((1 + n) / (1 + df)) + 1.0
    data = (1.0 + np.log(np.array(counts, dtype=np.float64))) * idf[columns]
    matrix = sparse.csr_matrix((data, columns, indptr), shape=(n, len(vocab)))
    return _normalise(matrix)


def _normalise(matrix: sparse.spmatrix) -> sparse.csr_matrix:
    m = sparse.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ m)


def similar_pairs(
    vectors: sparse.csr_matrix, *, threshold: float, top_terms: int = TOP_TERMS
) -> list[tuple[float, int, int]]:
    """``(cosine, i, j)`` with ``i < j`` and cosine >= threshold, most similar first.

    Only pairs sharing at least two of their heaviest distinctive terms are compared. That is
    what makes two articles similar, so little is missed: on the benchmark week this finds 208
    of the 210 pairs an exact all-pairs product finds at 0.4, in half the time of requiring one
    shared term (``bench/selection.py`` prints the recall).
    """
    n = vectors.shape[0]
    if n < 2:
        return []
    df = np.bincount(vectors.indices, minlength=vectors.shape[1])
    max_df = max(50, int(0.05 * n))
    rows: list[int] = []
    cols: list[int] = []
    for i in range(n):
        lo, hi = vectors.indptr[i], vectors.indptr[i + 1]
        idx = vectors.indices[lo:hi]
        weights = vectors.data[lo:hi]
        usable = (df[idx] >= 2) & (df[idx] <= max_df)
        idx, weights = idx[usable], weights[usable]
        # Stable order: heaviest first, then by term id, so ties never depend on the platform.
        order = np.lexsort((idx, -weights))[:top_terms]
        rows.extend([i] * len(order))
        cols.extend(idx[order].tolist())
    keys = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=vectors.shape
    )
    shared = sparse.triu(keys @ keys.T, k=1).tocoo()
    enough = shared.data >= MIN_SHARED
    left, right = shared.row[enough].astype(np.int64), shared.col[enough].astype(np.int64)
    sims = np.empty(len(left))
    for lo in range(0, len(left), PAIR_CHUNK):
        a, b = left[lo : lo + PAIR_CHUNK], right[lo : lo + PAIR_CHUNK]
        sims[lo : lo + PAIR_CHUNK] = np.asarray(vectors[a].multiply(vectors[b]).sum(axis=1)).ravel()
    keep = sims >= threshold - 1e-12
    left, right, sims = left[keep], right[keep], sims[keep]
    order = np.lexsort((right, left, -sims))
    return [(float(sims[k]), int(left[k]), int(right[k])) for k in order]


class _RowDots:
    """Cosine of two rows, with each row kept as a dict once it is needed."""

    def __init__(self, vectors: sparse.csr_matrix) -> None:
        self._v = vectors
        self._rows: dict[int, dict[int, float]] = {}

    def row(self, i: int) -> dict[int, float]:
        got = self._rows.get(i)
        if got is None:
            lo, hi = self._v.indptr[i], self._v.indptr[i + 1]
            got = dict(
                zip(self._v.indices[lo:hi].tolist(), self._v.data[lo:hi].tolist(), strict=True)
            )
            self._rows[i] = got
        return got

    def cos(self, i: int, j: int) -> float:
        a, b = self.row(i), self.row(j)
        if len(a) > len(b):
            a, b = b, a
        return sum(w * b.get(t, 0.0) for t, w in a.items())


def cluster(
    candidates: Sequence[Candidate],
    *,
    pair_threshold: float = PAIR_THRESHOLD,
    link_threshold: float = LINK_THRESHOLD,
) -> Clustering:
    """Group ``candidates`` into stories; deterministic for the same input order and content."""
    n = len(candidates)
    vectors = vectorise(candidates)
    parent = list(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        # The lower index stays the root, so the outcome never depends on merge direction.
        root, child = (a, b) if a < b else (b, a)
        parent[child] = root
        members[root].extend(members.pop(child))

    position = {c.article_id: i for i, c in enumerate(candidates)}
    for i, c in enumerate(candidates):
        target = position.get(c.duplicate_of) if c.duplicate_of is not None else None
        if target is not None and find(i) != find(target):
            union(find(i), find(target))

    dots = _RowDots(vectors)
    for sim, i, j in similar_pairs(vectors, threshold=pair_threshold):
        a, b = find(i), find(j)
        if a == b:
            continue
        # Two lone articles: their average link is this very pair's similarity.
        lone = len(members[a]) == 1 and len(members[b]) == 1 and sim >= link_threshold
        if lone or _average_link(dots, members[a], members[b], i, j) >= link_threshold:
            union(a, b)

    roots = sorted({find(i) for i in range(n)})
    stories = [sorted(members[r]) for r in roots]
    story_of = [0] * n
    for sid, story in enumerate(stories):
        for member in story:
            story_of[member] = sid
    return Clustering(stories=stories, story_of=story_of, vectors=vectors)


def _average_link(dots: _RowDots, left: list[int], right: list[int], i: int, j: int) -> float:
    """Mean cosine across the two groups, over the linking pair plus a few early members."""
    a = [i] + [m for m in left[:LINK_SAMPLE] if m != i]
    b = [j] + [m for m in right[:LINK_SAMPLE] if m != j]
    sims = [dots.cos(x, y) for x in a for y in b]
    return sum(sims) / len(sims)
