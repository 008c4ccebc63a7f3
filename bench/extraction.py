"""Extraction quality and speed on WCXB dev pages, as HTML and flattened to plain text.

    .venv/bin/python -m bench.extraction [--limit N] [--folds K]

Prints token precision / recall / F1 of the cleaned body against the true body (mean per page),
the share of ``must_exclude`` snippets that leak through and of ``must_include`` snippets kept
(pooled over all snippets), the share of headlines recovered exactly, and pages per second —
digest beside trafilatura alone and a keep-everything baseline, all measured in this run.

The shipped text model was trained on these very pages, so its full-set rows are optimistic (the
HTML cleaner asks it for a second opinion too); the "held-out" rows retrain the model on K folds
grouped by domain and clean each page, as text and as HTML, with a model that never saw its site
(needs scikit-learn, in the dev extras).

WCXB v1.0 (web-content-extraction-benchmark) by Murrough Foley, CC-BY-4.0.
"""

from __future__ import annotations

import argparse
import html as html_lib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from bench.corpus import Page, flatten_html, load_pages, snippet_share, token_prf, tokens
from digest.errors import DigestError
from digest.ingest.dumps import clean_text
from digest.ingest.lines import HEADLINE_FEATURE_NAMES
from digest.ingest.textmodel import LineModel

Cleaner = Callable[[str], tuple[str, str]]  # input -> (title, body)


@dataclass
class Row:
    name: str
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    leak: float = 0.0
    kept: float = 0.0
    titles: float | None = None
    pages_per_s: float | None = None
    note: str = ""

    def cells(self) -> list[str]:
        if self.note:
            return [self.name, *(["n/a"] * 7), self.note]
        title = "" if self.titles is None else f"{self.titles:.0%}"
        speed = "" if self.pages_per_s is None else f"{self.pages_per_s:,.0f}"
        return [
            self.name,
            f"{self.precision:.3f}",
            f"{self.recall:.3f}",
            f"{self.f1:.3f}",
            f"{self.leak:.1%}",
            f"{self.kept:.1%}",
            title,
            speed,
            "",
        ]


HEADER = ["input / cleaner", "P", "R", "F1", "leak", "kept", "title", "pages/s", ""]


def score(name: str, pages: Sequence[Page], outputs: Sequence[tuple[str, str]]) -> Row:
    """Score cleaned outputs (title, body) against the pages' truth."""
    prf = [token_prf(body, page.body) for (_, body), page in zip(outputs, pages, strict=True)]
    leaked = excluded = kept = included = 0
    for (_, body), page in zip(outputs, pages, strict=True):
        share = snippet_share(page.must_exclude, body)
        if share is not None:
            leaked += round(share * len(page.must_exclude))
            excluded += len(page.must_exclude)
        share = snippet_share(page.must_include, body)
        if share is not None:
            kept += round(share * len(page.must_include))
            included += len(page.must_include)
    # Cleaners that give no title at all (trafilatura's text, the baselines) get no title score.
    gives_titles = any(title for title, _ in outputs)
    titled = [(t, p.title) for (t, _), p in zip(outputs, pages, strict=True) if p.title]
    n = len(pages) or 1
    return Row(
        name,
        precision=sum(p for p, _, _ in prf) / n,
        recall=sum(r for _, r, _ in prf) / n,
        f1=sum(f for _, _, f in prf) / n,
        leak=leaked / (excluded or 1),
        kept=kept / (included or 1),
        titles=(
            sum(tokens(a) == tokens(b) for a, b in titled) / len(titled)
            if titled and gives_titles
            else None
        ),
    )


def run(name: str, cleaner: Cleaner, pages: Sequence[Page], inputs: Sequence[str]) -> Row:
    started = time.perf_counter()
    outputs = [_safe(cleaner, item) for item in inputs]
    elapsed = time.perf_counter() - started
    row = score(name, pages, outputs)
    row.pages_per_s = len(inputs) / elapsed if elapsed else None
    return row


def _safe(cleaner: Cleaner, item: str) -> tuple[str, str]:
    try:
        return cleaner(item)
    except DigestError:
        return "", ""


def digest_html(page: str) -> tuple[str, str]:
    from digest import extract

    article = extract(page, kind="html")
    return article.title, article.body


def digest_html_with(page: str, *, model: LineModel, headline: LineModel) -> tuple[str, str]:
    """The HTML cleaner with the given text models in place of the shipped ones."""
    from digest.ingest.pages import TextModels, clean_html

    article = clean_html(page, models=TextModels(model, headline))
    return article.title, article.body


def trafilatura_html(page: str) -> tuple[str, str]:
    import trafilatura

    return "", trafilatura.extract(page) or ""


def digest_text(
    text: str, *, model: LineModel | None = None, headline: LineModel | None = None
) -> tuple[str, str]:
    article = clean_text(text, model=model, headline=headline)
    return article.title, article.body


def trafilatura_text(text: str) -> tuple[str, str]:
    import trafilatura

    paragraphs = "".join(f"<p>{html_lib.escape(line)}</p>" for line in text.split("\n") if line)
    return "", trafilatura.extract(f"<html><body>{paragraphs}</body></html>") or ""


def keep_everything(text: str) -> tuple[str, str]:
    return "", text


def held_out(pages: Sequence[Page], texts: Sequence[str], *, folds: int) -> list[Row]:
    """Retrain the line model on all but one group of domains and clean that group with it, as
    flattened text and as HTML (whose cleaner asks the line model for a second opinion)."""
    text_name = f"text: digest, held-out by domain ({folds} folds)"
    html_name = f"html: digest, held-out by domain ({folds} folds)"
    try:
        from bench.train_cleaner import dataset, fit, fit_headline, split_by_domain
    except ImportError as exc:  # scikit-learn missing
        return [Row(text_name, note=str(exc)), Row(html_name, note=str(exc))]
    x, y, owner = dataset(pages)
    outputs: list[tuple[str, str]] = [("", "")] * len(pages)
    html_outputs: list[tuple[str, str]] = [("", "")] * len(pages)
    started = time.perf_counter()
    for group in split_by_domain(pages, folds):
        train = ~np.isin(owner, group)
        model = LineModel.from_dict(fit(x[train], y[train]))
        held = set(group)
        seen = [page for i, page in enumerate(pages) if i not in held]
        headline = LineModel.from_dict(fit_headline(seen, model), features=HEADLINE_FEATURE_NAMES)
        for i in group:
            outputs[i] = _safe(partial(digest_text, model=model, headline=headline), texts[i])
            html_outputs[i] = _safe(
                partial(digest_html_with, model=model, headline=headline), pages[i].html
            )
    rows = [score(text_name, pages, outputs), score(html_name, pages, html_outputs)]
    print(f"(held-out training and cleaning took {time.perf_counter() - started:.0f}s)")
    return rows


def table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER).rstrip(" |") + " |", "|" + "---|" * (len(HEADER) - 1)]
    for row in rows:
        cells = row.cells()
        lines.append(
            "| " + " | ".join(cells[:-1]) + (f" | {cells[-1]}" if cells[-1] else "") + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Extraction benchmark on WCXB dev pages.")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages")
    parser.add_argument("--folds", type=int, default=3, help="held-out folds (0: skip)")
    args = parser.parse_args(argv)
    pages = load_pages(limit=args.limit)
    if not pages:
        print("corpus absent, skipped")
        return
    htmls = [page.html for page in pages]
    texts = [flatten_html(page.html) for page in pages]
    held = held_out(pages, texts, folds=args.folds) if args.folds else []
    rows = [run("html: digest (shipped model)", digest_html, pages, htmls), *held[1:]]
    rows += [
        run("html: trafilatura", trafilatura_html, pages, htmls),
        run("text: digest (shipped model)", digest_text, pages, texts),
        *held[:1],
        run("text: trafilatura on <p> lines", trafilatura_text, pages, texts),
        run("text: keep everything", keep_everything, pages, texts),
    ]
    print(f"WCXB dev, {len(pages)} pages (WCXB by Murrough Foley, CC-BY-4.0)")
    print(table(rows))


if __name__ == "__main__":
    main()
