"""Golden files for one fixed issue: any change to the rendered bytes shows up in review.

Update on purpose only:
``DIGEST_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render_golden.py``
then read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.render import Personaliser, recipient_values, render_digest, render_transactional
from digest.render.sample import sample_content
from digest.settings import Settings

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"

RECIPIENT = recipient_values(
    unsubscribe_url="https://news.example.org/u/GOLDEN-TOKEN",
    preferences_url="https://news.example.org/p/GOLDEN-TOKEN",
    name="Ada",
)


def _settings(tmp_path: Path) -> Settings:
    # Every value that reaches the message is spelled out, so a changed default shows up here
    # rather than silently rewriting the golden files.
    return Settings(
        data_dir=tmp_path,
        base_url="https://news.example.org",
        newsletter_name="The Friday Digest",
        brand_color="#1a5276",
        brand_logo_url="",
        brand_font="Georgia, 'Times New Roman', serif",
        footer_text="You receive this because you subscribed to our weekly newsletter.",
        postal_address="Example Newsroom, 1 Market Street, Springfield 12345",
        locale="en_GB",
    )


def _golden_parts(tmp_path: Path) -> dict[str, str]:
    settings = _settings(tmp_path)
    digest = render_digest(sample_content(12), settings=settings)
    confirm = render_transactional(
        "confirm", settings=settings, values={"confirm_url": "https://news.example.org/c/GOLDEN"}
    )
    return {
        "digest.subject.txt": digest.subject + "\n" + digest.preheader + "\n",
        "digest.mjml": digest.mjml,
        # One tag per line, so that a change reads as a small diff in review.
        "digest.html": Personaliser(digest.html, html=True).fill(RECIPIENT).replace("><", ">\n<"),
        "digest.txt": Personaliser(digest.text, html=False).fill(RECIPIENT),
        "confirm.txt": confirm.subject + "\n\n" + confirm.text,
    }


@pytest.mark.parametrize(
    "name", ["digest.subject.txt", "digest.mjml", "digest.html", "digest.txt", "confirm.txt"]
)
def test_the_fixed_issue_renders_exactly_as_the_golden_file(name: str, tmp_path: Path) -> None:
    produced = _golden_parts(tmp_path)[name]
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(produced, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with DIGEST_UPDATE_GOLDEN=1 to create it"
    assert produced == path.read_text(encoding="utf-8"), (
        f"{name} differs from its golden file; if the change is intended, "
        "rerun with DIGEST_UPDATE_GOLDEN=1 and review the diff"
    )
