"""Run every benchmark present, each with its default options: ``python -m bench``.

Each ``bench/<topic>.py`` that has a ``main()`` is run in turn (helpers and training scripts
excepted); a topic not written yet is simply absent. Run one topic with
``python -m bench.<topic> --help`` to see its own options.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

_NOT_BENCHMARKS = {"corpus", "train_cleaner", "pages_tune", "send_rounds"}


def main() -> int:
    topics = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not info.name.startswith("_") and info.name not in _NOT_BENCHMARKS
    )
    failed = 0
    for topic in topics:
        run = getattr(importlib.import_module(f"bench.{topic}"), "main", None)
        if run is None:
            continue
        print(f"\n## {topic}\n", flush=True)
        sys.argv = [f"bench.{topic}"]  # each topic parses its own (default) options
        failed += bool(run())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
