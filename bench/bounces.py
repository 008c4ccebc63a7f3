"""Bounce classification against the Sisimai-labelled development corpus.

Run: ``.venv/bin/python -m bench.bounces [--errors]``

Reads ``../shared/corpus/bounces-dev/`` (or ``$DIGEST_CORPUS_DIR/bounces-dev``) at run time; the
messages are never copied into the repository (sisimai/set-of-emails, BSD-2-Clause,
© azumakuniyuki). Prints, for digest's classifier and for a naive baseline measured in the same
run on the same parsed records, the confusion matrix, precision and recall per kind, and the
count of policy rejections called hard (the one error that must be zero).

Baseline: a feedback report is a complaint; otherwise the first digit of the status code
decides (5 → hard, 4 → soft, none → unknown): what a classifier that reads only the code does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from digest.bounces.classify import classify, explain
from digest.bounces.parse import BounceRecord, parse_report
from digest.models import BounceKind

KINDS = ["hard", "soft", "policy", "complaint", "unknown"]
MISSED = "missed"  # a labelled recipient the parser did not report at all


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    recipient: str
    label: str | None
    record: BounceRecord | None


def corpus_dir() -> Path:
    """The bounces-dev folder (``$DIGEST_CORPUS_DIR`` overrides ``../shared/corpus``)."""
    root = os.environ.get("DIGEST_CORPUS_DIR")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "corpus"
    return base / "bounces-dev"


def load_cases(folder: Path) -> list[Case]:
    """Pair each labelled recipient with the record parsed for it.

    Records are matched to labels by address first; what is left in a file is paired in order
    (Sisimai invents placeholder addresses for complaints that name nobody)."""
    labels: dict[str, list[dict[str, str | None]]] = json.loads(
        (folder / "labels.json").read_text()
    )["files"]
    cases: list[Case] = []
    for name, wanted in sorted(labels.items()):
        records = parse_report((folder / name).read_bytes(), source=name)
        left = list(records)
        unmatched: list[dict[str, str | None]] = []
        for label in wanted:
            address = (label["recipient"] or "").lower()
            found = next((r for r in left if r.recipient == address), None)
            if found is None:
                unmatched.append(label)
                continue
            left.remove(found)
            cases.append(Case(name, address, label["kind"], found))
        for label in unmatched:
            record = left.pop(0) if left else None
            cases.append(Case(name, (label["recipient"] or "").lower(), label["kind"], record))
    return cases


def baseline(record: BounceRecord) -> BounceKind:
    if record.report == "arf":
        return BounceKind.COMPLAINT
    first = (record.status or "")[:1]
    return {"5": BounceKind.HARD, "4": BounceKind.SOFT}.get(first, BounceKind.UNKNOWN)


def score(cases: list[Case], predict: Callable[[BounceRecord], BounceKind]) -> dict[str, object]:
    scored = [c for c in cases if c.label is not None]
    pairs = [(c.label, predict(c.record).value if c.record else MISSED) for c in scored]
    matrix = Counter(pairs)
    per_kind: dict[str, tuple[float, float, int]] = {}
    for kind in ("hard", "soft", "policy", "complaint"):
        truth = sum(1 for label, _ in pairs if label == kind)
        said = sum(1 for _, got in pairs if got == kind)
        right = matrix[(kind, kind)]
        per_kind[kind] = (right / said if said else 0.0, right / truth if truth else 0.0, truth)
    return {
        "matrix": matrix,
        "per_kind": per_kind,
        "agreement": sum(1 for label, got in pairs if label == got) / len(pairs),
        "policy_as_hard": matrix[("policy", "hard")],
        "n": len(pairs),
    }


def print_report(name: str, result: dict[str, object]) -> None:
    matrix: Counter[tuple[str, str]] = result["matrix"]  # type: ignore[assignment]
    per_kind: dict[str, tuple[float, float, int]] = result["per_kind"]  # type: ignore[assignment]
    columns = [*KINDS, MISSED]
    print(
        f"\n{name}: agreement {result['agreement']:.1%} of {result['n']} labelled recipients,"
        f" policy called hard: {result['policy_as_hard']}"
    )
    print("  label \\ said | " + " | ".join(f"{c:>9}" for c in columns))
    for label in ("hard", "soft", "policy", "complaint"):
        row = " | ".join(f"{matrix[(label, c)]:>9}" for c in columns)
        print(f"  {label:>12} | {row}")
    print("  kind       precision  recall  labelled")
    for kind, (precision, recall, truth) in per_kind.items():
        print(f"  {kind:<10} {precision:>9.1%} {recall:>7.1%} {truth:>9}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list every disagreement")
    args = parser.parse_args(argv)
    folder = corpus_dir()
    if not (folder / "labels.json").exists():
        print(f"bounce corpus not found at {folder}; set DIGEST_CORPUS_DIR. Skipped.")
        return 0
    cases = load_cases(folder)
    ambiguous = sum(1 for c in cases if c.label is None)
    files = len({c.file for c in cases})
    found = sum(1 for c in cases if c.record is not None)
    print(
        f"{files} messages, {len(cases)} labelled recipients ({ambiguous} ambiguous, not"
        f" scored); parser reported {found} of them"
    )
    ours = score(cases, classify)
    naive = score(cases, baseline)
    print_report("digest", ours)
    print_report("baseline (ARF → complaint, else first status digit 5 → hard, 4 → soft)", naive)
    if args.errors:
        print("\nDisagreements (file, recipient, label → said: rule | status | diagnostic):")
        for case in cases:
            if case.label is None:
                continue
            if case.record is None:
                print(f"  {case.file} {case.recipient} {case.label} → {MISSED}")
                continue
            verdict = explain(case.record)
            if verdict.kind.value != case.label:
                print(
                    f"  {case.file} {case.recipient} {case.label} → {verdict.kind.value}:"
                    f" {verdict.rule} | {case.record.status} | {case.record.diagnostic[:160]}"
                )
    return 1 if ours["policy_as_hard"] else 0


if __name__ == "__main__":
    sys.exit(main())
