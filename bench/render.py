"""Rendering cost per recipient: compile once and fill placeholders, against recompiling.

    .venv/bin/python -m bench.render [--recipients 2000] [--items 12]

Baselines, measured in the same run on the same 12-item sample issue:
  * recompile: Jinja2 + MJML compile + text part for every recipient (render_digest each time);
  * recompile MJML only: the issue's MJML with the recipient's values put in, compiled again.
Candidate: render once, then ``Personaliser.fill`` of the HTML and the text part per recipient.
Times are medians of 5 rounds; µs per recipient.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from digest.render import Personaliser, recipient_values, render_digest
from digest.render.mjml import compile_mjml
from digest.render.sample import sample_content
from digest.settings import Settings

ROUNDS = 5


def per_recipient_us(
    work: Callable[[dict[str, str]], object], recipients: list[dict[str, str]]
) -> float:
    """Median over ROUNDS of the time per recipient, in microseconds."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for values in recipients:
            work(values)
        samples.append((time.perf_counter() - start) / len(recipients) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--items", type=int, default=12)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), base_url="https://news.example.org")
        content = sample_content(args.items)
        recipients = [
            recipient_values(
                unsubscribe_url=f"https://news.example.org/u/{i:08d}-tokentokentoken",
                preferences_url=f"https://news.example.org/p/{i:08d}-tokentokentoken",
                name=f"Reader {i}",
            )
            for i in range(args.recipients)
        ]
        once = render_digest(content, settings=settings)
        html_part = Personaliser(once.html, html=True)
        text_part = Personaliser(once.text, html=False)

        def personalise(values: dict[str, str]) -> object:
            return html_part.fill(values), text_part.fill(values)

        def recompile_mjml(values: dict[str, str]) -> object:
            mjml = once.mjml
            for placeholder, value in values.items():
                mjml = mjml.replace(placeholder, value)
            return compile_mjml(mjml)

        def recompile_all(values: dict[str, str]) -> object:
            return render_digest(content, settings=settings)

        # The slow baselines run on a tenth of the recipients: the per-recipient figure is what
        # is compared, and it does not depend on the count.
        few = recipients[: max(20, len(recipients) // 10)]
        rows = [
            (
                "recompile: Jinja2 + MJML + text per recipient (baseline)",
                per_recipient_us(recompile_all, few),
            ),
            ("recompile MJML only per recipient", per_recipient_us(recompile_mjml, few)),
            (
                "compile once + Personaliser.fill (html + text)",
                per_recipient_us(personalise, recipients),
            ),
        ]
        compile_once = per_recipient_us(
            lambda _: render_digest(content, settings=settings), few[:20]
        )

    baseline = rows[0][1]
    print(
        f"Rendering, {args.items}-item issue, {len(once.html.encode()):,} B of HTML, "
        f"{args.recipients:,} recipients (baselines on {len(few):,}); median of {ROUNDS} rounds\n"
    )
    print("| per recipient | µs | vs baseline |")
    print("|---|---|---|")
    for label, us in rows:
        print(
            f"| {label} | {us:,.1f} | {baseline / us:,.0f}× faster |"
            if us != baseline
            else f"| {label} | {us:,.1f} | 1× |"
        )
    total = compile_once + rows[2][1] * args.recipients
    print(
        f"\nOne issue for {args.recipients:,} recipients: {total / 1e3:,.0f} ms compiled once "
        f"vs {baseline * args.recipients / 1e3:,.0f} ms recompiling "
        f"(one render: {compile_once:,.0f} µs)"
    )


if __name__ == "__main__":
    main()
