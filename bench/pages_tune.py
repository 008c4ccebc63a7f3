"""Tune the HTML cleaner: digest's ``clean_html`` beside trafilatura alone, on WCXB dev pages.

Run: ``.venv/bin/python -m bench.pages_tune [--limit N] [--worst K]``. Reads
``$DIGEST_CORPUS_DIR/wcxb-dev`` (default ``../shared/corpus/wcxb-dev``) at run time and skips
cleanly when it is absent. Prints token precision/recall/F1 against ``body``, the share of
``must_exclude`` snippets that leak and of ``must_include`` snippets kept. WCXB is by Murrough
Foley (CC-BY-4.0). The official table is ``bench/extraction.py``; this one is for tuning.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from bench.corpus import Page, corpus_dir, load_pages, snippet_share, token_prf


@dataclass
class Score:
    precision: float
    recall: float
    f1: float
    leak: float | None
    kept: float | None


def score(output: str, page: Page) -> Score:
    """Scores exactly as the official bench (``bench.corpus``) computes them."""
    p, r, f = token_prf(output, page.body)
    return Score(
        p, r, f, snippet_share(page.must_exclude, output), snippet_share(page.must_include, output)
    )


def run_trafilatura(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_comments=False) or ""


def run_trafilatura_precise(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_comments=False, favor_precision=True) or ""


def run_digest(html: str) -> str:
    from digest.errors import DigestError
    from digest.ingest.pages import clean_html

    try:
        return clean_html(html).body
    except DigestError:
        return ""


SYSTEMS: dict[str, Callable[[str], str]] = {
    "trafilatura": run_trafilatura,
    "trafilatura precise": run_trafilatura_precise,
    "digest clean_html": run_digest,
}


def _one(page: Page) -> tuple[str, dict[str, Score], dict[str, float]]:
    scores: dict[str, Score] = {}
    seconds: dict[str, float] = {}
    for name, system in SYSTEMS.items():
        start = time.perf_counter()
        output = system(page.html)
        seconds[name] = time.perf_counter() - start
        scores[name] = score(output, page)
    return page.id, scores, seconds


def _held_out_one(args: tuple[Page, dict[str, object], dict[str, object]]) -> tuple[str, Score]:
    from digest.errors import DigestError
    from digest.ingest.lines import HEADLINE_FEATURE_NAMES
    from digest.ingest.pages import TextModels, clean_html
    from digest.ingest.textmodel import LineModel

    page, line, headline = args
    models = TextModels(
        LineModel.from_dict(line), LineModel.from_dict(headline, features=HEADLINE_FEATURE_NAMES)
    )
    try:
        body = clean_html(page.html, models=models).body
    except DigestError:
        body = ""
    return page.id, score(body, page)


def held_out(pages: list[Page], *, folds: int, workers: int) -> list[Score]:
    """clean_html with text models retrained without the page's domains (the shipped model saw
    every dev page, so the plain row is optimistic)."""
    from bench.train_cleaner import dataset, fit, fit_headline, split_by_domain
    from digest.ingest.lines import HEADLINE_FEATURE_NAMES
    from digest.ingest.textmodel import LineModel

    x, y, owner = dataset(pages)
    scores: dict[str, Score] = {}
    for group in split_by_domain(pages, folds):
        train = ~np.isin(owner, group)
        line = fit(x[train], y[train])
        held = set(group)
        seen = [page for i, page in enumerate(pages) if i not in held]
        headline = fit_headline(seen, LineModel.from_dict(line))
        LineModel.from_dict(headline, features=HEADLINE_FEATURE_NAMES)  # fails early if invalid
        jobs = [(pages[i], line, headline) for i in group]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            scores.update(pool.map(_held_out_one, jobs, chunksize=8))
    return [scores[p.id] for p in pages]


def _row(name: str, rows: list[Score], rate: float | None) -> str:
    n = len(rows)
    p = sum(r.precision for r in rows) / n
    r_ = sum(r.recall for r in rows) / n
    f = sum(r.f1 for r in rows) / n
    leaks = [r.leak for r in rows if r.leak is not None]
    keeps = [r.kept for r in rows if r.kept is not None]
    leak = sum(leaks) / max(1, len(leaks))
    kept = sum(keeps) / max(1, len(keeps))
    speed = f"{rate:8.1f}" if rate is not None else f"{'':>8}"
    return f"{name:40} {p:6.3f} {r_:6.3f} {f:6.3f} {leak:6.1%} {kept:6.1%} {speed}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages")
    parser.add_argument("--worst", type=int, default=0, help="list the K worst pages of digest")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folds", type=int, default=0, help="also a held-out row (K folds)")
    args = parser.parse_args(argv)
    pages = load_pages(limit=args.limit or None)
    if not pages:
        print(f"skipped: no corpus at {corpus_dir()}")
        return 0
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(_one, pages, chunksize=8))
    print(f"{len(results)} pages from {corpus_dir()} (WCXB dev, Murrough Foley, CC-BY-4.0)")
    print(f"{'system':40} {'P':>6} {'R':>6} {'F1':>6} {'leak':>6} {'kept':>6} {'pages/s':>8}")
    for name in SYSTEMS:
        rows = [scores[name] for _, scores, _ in results]
        rate = len(rows) / max(1e-9, sum(sec[name] for _, _, sec in results))
        label = f"{name} (shipped text model)" if name == "digest clean_html" else name
        print(_row(label, rows, rate))
    if args.folds:
        rows = held_out(pages, folds=args.folds, workers=args.workers)
        print(_row(f"digest clean_html, held-out ({args.folds} folds)", rows, None))
    if args.worst:
        ranked = sorted(results, key=lambda item: item[1]["digest clean_html"].f1)
        for page_id, scores, _ in ranked[: args.worst]:
            s = scores["digest clean_html"]
            t = scores["trafilatura"]
            print(
                f"{page_id}: P={s.precision:.2f} R={s.recall:.2f} F1={s.f1:.2f} "
                f"leak={s.leak} (trafilatura F1={t.f1:.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
