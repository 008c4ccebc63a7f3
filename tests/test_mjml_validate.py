"""The generated MJML passes the official validator (mjml@5.4.1, strict).

mjml-python accepts unknown tags and attributes silently, so a typo in a template would ship.
The validator comes from the project's ``node_modules`` (``npm install`` in the repository);
the tests skip only when Node itself is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from digest.render import render_digest, render_transactional
from digest.render.sample import sample_content
from digest.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MJML_CLI = ROOT / "node_modules" / ".bin" / "mjml"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node/npm not installed: the official MJML validator cannot run (install nodejs, npm)",
)


@pytest.fixture(scope="module")
def mjml_cli() -> Path:
    if not MJML_CLI.exists():
        # A declared dev dependency (package.json): install it as `make setup-node` does.
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=ROOT,
            check=True,
            timeout=300,
        )
    assert MJML_CLI.exists(), "npm install did not provide node_modules/.bin/mjml"
    return MJML_CLI


def validate(cli: Path, mjml: str, folder: Path) -> subprocess.CompletedProcess[str]:
    source = folder / "message.mjml"
    source.write_text(mjml, encoding="utf-8")
    return subprocess.run(
        [str(cli), str(source), "--validate", "--config.validationLevel=strict"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        base_url="https://news.example.org",
        brand_logo_url="https://cdn.example.org/logo.png",
    )


def test_the_digest_mjml_is_valid_for_the_official_validator(
    mjml_cli: Path, settings: Settings, tmp_path: Path
) -> None:
    result = validate(mjml_cli, render_digest(sample_content(12), settings=settings).mjml, tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_digest_without_logo_or_images_is_valid_too(mjml_cli: Path, tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path, base_url="https://news.example.org")
    content = sample_content(5)
    bare = type(content)(
        subject=content.subject,
        preheader=content.preheader,
        week=content.week,
        issue_date=content.issue_date,
        web_url=content.web_url,
        items=[type(i)(i.title, i.url, i.source, i.section, i.blurb) for i in content.items],
    )
    result = validate(mjml_cli, render_digest(bare, settings=plain).mjml, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("confirm", {"confirm_url": "https://news.example.org/c/abc"}),
        ("goodbye", {"subscribe_url": "https://news.example.org/subscribe"}),
        ("operator_notice", {"title": "Paused", "body": "a\n\nb", "action_url": "https://x.org/"}),
    ],
)
def test_transactional_mjml_is_valid(
    mjml_cli: Path, settings: Settings, tmp_path: Path, kind: str, values: dict[str, str]
) -> None:
    result = validate(
        mjml_cli, render_transactional(kind, settings=settings, values=values).mjml, tmp_path
    )
    assert result.returncode == 0, result.stderr


def test_the_validator_catches_what_mjml_python_lets_through(
    mjml_cli: Path, tmp_path: Path
) -> None:
    from digest.render.mjml import compile_mjml

    broken = (
        "<mjml><mj-body><mj-section><mj-column><mj-txt>typo</mj-txt>"
        '<mj-text colour="red">x</mj-text></mj-column></mj-section></mj-body></mjml>'
    )
    compile_mjml(broken)  # MRML compiles it without complaint
    result = validate(mjml_cli, broken, tmp_path)
    assert result.returncode != 0
    assert "mj-txt" in result.stderr and "colour" in result.stderr
