"""The CLI as a person uses it: help texts, one-line errors, JSON output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support_cli import env_for
from typer.testing import CliRunner

from digest.cli import app
from digest.settings import Settings

runner = CliRunner()


def commands_of(group: object) -> list[str]:
    import typer.main

    click_group = typer.main.get_group(app)
    names: list[str] = []

    def walk(cmd: object, prefix: list[str]) -> None:
        sub = getattr(cmd, "commands", None)
        if sub is None:
            names.append(" ".join(prefix))
            return
        assert sub, f"`digest {' '.join(prefix)}` is listed but has no commands"
        for name, child in sub.items():
            walk(child, prefix + [name])

    walk(click_group, [])
    return names


def test_every_listed_command_has_help_with_an_example() -> None:
    names = commands_of(app)
    expected = {"demo", "extract", "ingest", "web", "issue build", "issue send", "db upgrade"}
    assert expected <= set(names)
    for name in names:
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Example" in result.output, f"`digest {name} --help` shows no example"


def test_help_paragraphs_flow_to_the_terminal_width_and_examples_keep_their_own_lines() -> None:
    # The docstring breaks its lines at 100 characters, after "when it fails"; on a wider
    # terminal the paragraph flows on past it (the source's breaks kept would leave ragged
    # half-lines at 80 columns).
    result = runner.invoke(app, ["issue", "send", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    paragraph = next(line for line in lines if line.startswith("First runs"))
    assert "when it fails (--force sends anyway;" in paragraph, paragraph
    examples = [line for line in lines if line.startswith("Example:")]
    assert examples[:2] == [
        "Example: digest issue send --dry-run",
        "Example: digest issue send --test-to me@example.org",
    ]


def test_config_show_masks_secrets(settings: Settings) -> None:
    result = runner.invoke(app, ["config", "show", "--json"], env=env_for(settings))
    assert result.exit_code == 0, result.output
    assert "test-secret-key" not in result.output
    assert '"secret_key": "********"' in result.output


def test_a_person_gets_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "DIGEST_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", "from digest.cli import main; main()", "issue", "show"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: no issue has been built yet (run: digest issue build)"
    ]


def test_a_bad_setting_is_named(tmp_path: Path) -> None:
    env = {**os.environ, "DIGEST_DATA_DIR": str(tmp_path), "DIGEST_TIMEZONE": "Mars/Olympus"}
    done = subprocess.run(
        [sys.executable, "-c", "from digest.cli import main; main()", "config", "show"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "DIGEST_TIMEZONE" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("as_json", [True])
def test_extract_prints_the_seed_article(shared_dir: Path, as_json: bool) -> None:
    seed = next((shared_dir / "seed").glob("*.txt"))
    result = runner.invoke(app, ["extract", str(seed), "--json"])
    assert result.exit_code == 0, result.output
    title = "NATO to Send Kiev Signals Equipment After Latest Ukraine-Russia Spat"
    assert f'"title": "{title}"' in result.output
