"""The shipped line classifiers (body lines, headline): boosted trees stored as plain numbers.

The model file (``digest/ingest/models/lines.json.gz``, gzip-compressed JSON) holds only
feature names, thresholds, node links and leaf values: no text from the pages it was trained on.
It is produced by ``python -m bench.train_cleaner`` (scikit-learn is needed there, never at run
time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from digest.ingest.lines import FEATURE_NAMES, HEADLINE_FEATURE_NAMES

MODEL_PATH = Path(__file__).parent / "models" / "lines.json.gz"
HEADLINE_MODEL_PATH = Path(__file__).parent / "models" / "headline.json.gz"


@dataclass(frozen=True, slots=True)
class LineModel:
    """Boosted trees flattened into parallel node arrays; every tree is walked at once.

    Leaves point to themselves and compare against +inf, so walking ``depth`` steps from each
    tree's root lands every line on a leaf.
    """

    feature: npt.NDArray[np.intp]
    threshold: npt.NDArray[np.float64]
    left: npt.NDArray[np.intp]
    right: npt.NDArray[np.intp]
    value: npt.NDArray[np.float64]
    roots: npt.NDArray[np.intp]
    depth: int
    base: float
    threshold_body: float

    def scores(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """Return the probability that each feature row is an article body line."""
        if not rows:
            return []
        x = np.asarray(rows, dtype=np.float64)
        lines = np.arange(len(rows))[:, None]
        nodes = np.broadcast_to(self.roots, (len(rows), len(self.roots))).copy()
        for _ in range(self.depth):
            goes_left = x[lines, self.feature[nodes]] <= self.threshold[nodes]
            nodes = np.where(goes_left, self.left[nodes], self.right[nodes])
        raw = self.base + self.value[nodes].sum(axis=1)
        probabilities: list[float] = (1.0 / (1.0 + np.exp(-raw))).tolist()
        return probabilities

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, features: Sequence[str] = FEATURE_NAMES
    ) -> LineModel:
        """Build a model from its JSON form; raises ValueError when it was made for other
        features than ``features`` (the line features unless told otherwise)."""
        if tuple(data["features"]) != tuple(features):
            raise ValueError("the line model was trained on other features; retrain it")
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        roots: list[int] = []
        for tree in data["trees"]:
            offset = len(feature)
            roots.append(offset)
            for f, t, lo, hi, v in zip(
                tree["feature"],
                tree["threshold"],
                tree["left"],
                tree["right"],
                tree["value"],
                strict=True,
            ):
                leaf = lo < 0
                here = len(feature)
                feature.append(0 if leaf else f)
                threshold.append(float("inf") if leaf else t)
                left.append(here if leaf else offset + lo)
                right.append(here if leaf else offset + hi)
                value.append(v if leaf else 0.0)
        return cls(
            feature=np.asarray(feature, dtype=np.intp),
            threshold=np.asarray(threshold, dtype=np.float64),
            left=np.asarray(left, dtype=np.intp),
            right=np.asarray(right, dtype=np.intp),
            value=np.asarray(value, dtype=np.float64),
            roots=np.asarray(roots, dtype=np.intp),
            depth=int(data["depth"]),
            base=float(data["base"]),
            threshold_body=float(data.get("threshold", 0.5)),
        )


def _load(path: Path) -> Any:
    import gzip

    return json.loads(gzip.decompress(path.read_bytes()))


@lru_cache(maxsize=1)
def default_model() -> LineModel:
    """Return the shipped model (loaded once). Raises FileNotFoundError if it was not built."""
    return LineModel.from_dict(_load(MODEL_PATH))


@lru_cache(maxsize=1)
def default_headline_model() -> LineModel:
    """Return the shipped headline scorer (loaded once), which rates headline candidates."""
    data = _load(HEADLINE_MODEL_PATH)
    return LineModel.from_dict(data, features=HEADLINE_FEATURE_NAMES)
