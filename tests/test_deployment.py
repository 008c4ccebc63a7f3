"""docker-compose.yml runs real digest commands, and the README's two commands exist."""

from __future__ import annotations

from pathlib import Path

import typer.main
import yaml

from digest.cli import app

ROOT = Path(__file__).resolve().parents[1]


def known_command(words: list[str]) -> bool:
    group = typer.main.get_group(app)
    cmd: object = group
    for word in words:
        if word.startswith("-"):
            break
        sub = getattr(cmd, "commands", None)
        if sub is None:
            break
        if word not in sub:
            return False
        cmd = sub[word]
    return getattr(cmd, "commands", None) is None


def test_every_compose_service_of_the_app_runs_a_real_digest_command() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"db", "mailpit", "web", "scheduler"} <= set(services)
    app_services = [s for s in services.values() if "build" in s]
    assert app_services
    for service in app_services:
        command = service["command"]
        assert command[0] == "digest" and known_command(command[1:]), command
        env = service["environment"]
        assert env["DIGEST_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["DIGEST_SMTP_HOST"] == "mailpit"


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndemo:" in makefile and "\ntest:" in makefile


def test_every_digest_command_in_the_readme_exists_with_its_options() -> None:
    import shlex

    group = typer.main.get_group(app)
    readme = (ROOT / "README.md").read_text()
    lines = [
        line.split("  #")[0].strip()
        for block in readme.split("```sh")[1:]
        for line in block.split("```", 1)[0].splitlines()
        if line.strip().startswith("digest ")
    ]
    assert len(lines) > 20
    for line in lines:
        words = shlex.split(line)[1:]
        cmd: object = group
        while hasattr(cmd, "commands") and words and words[0] in cmd.commands:
            cmd = cmd.commands[words.pop(0)]
        assert not hasattr(cmd, "commands"), f"README names no command: {line}"
        known = {opt for param in cmd.params for opt in param.opts}  # type: ignore[attr-defined]
        for word in words:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"README uses an unknown option: {line}"
