"""Train the line classifier shipped in ``digest/ingest/models/lines.json.gz``.

Reproduce the shipped model (needs the dev extras, for scikit-learn, and the WCXB dev pages):

    .venv/bin/python -m bench.train_cleaner   # writes digest/ingest/models/{lines,headline}.json

Held-out scores (models retrained per group of domains) are printed by ``python -m
bench.extraction``. The headline scorer rates the lines around the top of the body; its label is
the line equal to the page's true title, its candidates are placed by the line model's scores.

Labels: a flattened line is body when at least half of its word trigrams occur in the page's
true body; a line too short for trigrams only when it equals a whole body paragraph (a
sub-heading). Training is deterministic (fixed seed). The JSON keeps numbers only.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.corpus import Page, flatten_html, load_pages, tokens
from digest.ingest.dumps import text_lines
from digest.ingest.lines import (
    FEATURE_NAMES,
    HEADLINE_FEATURE_NAMES,
    features,
    headline_candidates,
    headline_features,
)
from digest.ingest.textmodel import HEADLINE_MODEL_PATH, MODEL_PATH, LineModel

PARAMS: dict[str, Any] = {
    "max_iter": 300,
    "learning_rate": 0.08,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "random_state": 0,
}
HEADLINE_PARAMS: dict[str, Any] = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "random_state": 0,
}


def _trigrams(ws: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + 3]) for i in range(len(ws) - 2)}


def label_lines(lines: Sequence[str], body: str) -> list[int]:
    """Return 1 for each line that belongs to the true body, else 0."""
    truth = _trigrams(tokens(body))
    paragraphs = {" ".join(tokens(p)) for p in body.split("\n") if p.strip()}
    labels = []
    for line in lines:
        ws = tokens(line)
        grams = _trigrams(ws)
        if grams:
            labels.append(int(sum(g in truth for g in grams) >= len(grams) / 2))
        else:
            labels.append(int(bool(ws) and " ".join(ws) in paragraphs))
    return labels


def page_rows(page: Page) -> tuple[list[str], list[list[float]], list[int]]:
    lines = text_lines(flatten_html(page.html))
    return lines, features(lines), label_lines(lines, page.body)


def fit(
    x: np.ndarray,
    y: np.ndarray,
    *,
    params: dict[str, Any] = PARAMS,
    names: Sequence[str] = FEATURE_NAMES,
) -> dict[str, Any]:
    """Fit boosted trees and return the model's JSON form (numbers only)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(**params)
    clf.fit(x, y)
    trees = []
    depth = 0
    # scikit-learn keeps fitted trees as node records; copy out only the numbers we walk.
    for (predictor,) in clf._predictors:
        nodes = predictor.nodes
        depth = max(depth, int(nodes["depth"].max()))
        leaf = nodes["is_leaf"].astype(bool)
        trees.append(
            {
                "feature": nodes["feature_idx"].astype(int).tolist(),
                "threshold": [float(t) for t in nodes["num_threshold"]],
                "left": np.where(leaf, -1, nodes["left"].astype(np.int64)).astype(int).tolist(),
                "right": np.where(leaf, -1, nodes["right"].astype(np.int64)).astype(int).tolist(),
                "value": [float(v) for v in nodes["value"]],
            }
        )
    model = {
        "kind": "boosted line classifier",
        "trained_on": "WCXB v1.0 dev split (Murrough Foley, CC-BY-4.0), pages flattened to lines",
        "params": params,
        "features": list(names),
        "base": float(np.ravel(clf._baseline_prediction)[0]),
        "depth": depth,
        "threshold": 0.5,
        "trees": trees,
    }
    check = LineModel.from_dict(model, features=names).scores(x[:500].tolist())
    assert np.allclose(check, clf.predict_proba(x[:500])[:, 1], atol=1e-6), "export mismatch"
    return model


def headline_rows(
    lines: Sequence[str], scores: Sequence[float], title: str
) -> tuple[list[list[float]], list[int]]:
    """Return the headline candidates' features, and 1 for the one equal to the true title."""
    candidates = headline_candidates(scores)
    truth = tokens(title)
    labels = [int(bool(truth) and tokens(lines[i]) == truth) for i in candidates]
    return headline_features(lines, scores, candidates), labels


def fit_headline(pages: Sequence[Page], line_model: LineModel) -> dict[str, Any]:
    """Fit the headline scorer on candidates placed by the line model's own scores."""
    xs: list[list[float]] = []
    ys: list[int] = []
    for page in pages:
        lines = text_lines(flatten_html(page.html))
        rows, labels = headline_rows(lines, line_model.scores(features(lines)), page.title)
        xs += rows
        ys += labels
    return fit(np.asarray(xs), np.asarray(ys), params=HEADLINE_PARAMS, names=HEADLINE_FEATURE_NAMES)


def dataset(pages: Sequence[Page]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return features, labels and the page number of every line."""
    xs: list[list[float]] = []
    ys: list[int] = []
    owner: list[int] = []
    for number, page in enumerate(pages):
        _, rows, labels = page_rows(page)
        xs += rows
        ys += labels
        owner += [number] * len(rows)
    return np.asarray(xs), np.asarray(ys), np.asarray(owner)


def split_by_domain(pages: Sequence[Page], k: int) -> list[list[int]]:
    """Split page numbers into k folds grouped by domain (no domain on both sides)."""
    by_domain: dict[str, list[int]] = {}
    for number, page in enumerate(pages):
        by_domain.setdefault(page.domain, []).append(number)
    buckets: list[list[int]] = [[] for _ in range(k)]
    for members in sorted(by_domain.values(), key=len, reverse=True):
        min(buckets, key=len).extend(members)
    return buckets


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pages")
    parser.add_argument("--out", default=str(MODEL_PATH), help="where to write the line model")
    parser.add_argument(
        "--headline-out", default=str(HEADLINE_MODEL_PATH), help="where to write the headline model"
    )
    args = parser.parse_args(argv)
    pages = load_pages(limit=args.limit)
    if not pages:
        print("corpus absent, skipped")
        return
    started = time.perf_counter()
    x, y, _ = dataset(pages)
    model = fit(x, y)
    _write(model, args.out)
    headline = fit_headline(pages, LineModel.from_dict(model))
    _write(headline, args.headline_out)
    print(
        f"trained on {len(pages)} pages, {len(y)} lines ({y.mean():.0%} body) "
        f"in {time.perf_counter() - started:.0f}s -> {args.out}, {args.headline_out}"
    )


def _write(model: dict[str, Any], path: str) -> None:
    """gzip-compressed JSON (``mtime=0``: the same model gives the same bytes)."""
    import gzip

    data = json.dumps(model, separators=(",", ":")).encode()
    with open(path, "wb") as out:
        out.write(gzip.compress(data, compresslevel=9, mtime=0))


if __name__ == "__main__":
    main()
