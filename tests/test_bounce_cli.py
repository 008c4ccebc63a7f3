"""`digest bounces process|list|stats` as an operator uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support_cli import env_for
from typer.testing import CliRunner

from digest.cli import app
from digest.models import Bounce
from digest.settings import Settings

runner = CliRunner()


def bounce_file(folder: Path, name: str, recipient: str, status: str, text: str) -> Path:
    path = folder / name
    path.write_bytes(
        (
            "From: MAILER-DAEMON@mx.example.net\r\nTo: digest@news.example.org\r\n"
            f"Message-ID: <{name}@mx.example.net>\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.net\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; {text}\r\n\r\n--B--\r\n"
        ).encode()
    )
    return path


def test_process_dry_run_json_lists_each_recipient_and_changes_nothing(
    tmp_path: Path, settings: Settings, engine: Engine, session: Session
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    bounce_file(folder, "a.eml", "gone@example.net", "5.1.1", "550 5.1.1 user unknown")
    bounce_file(folder, "b.eml", "r@example.com", "5.7.26", "550 5.7.26 unauthenticated")

    result = runner.invoke(
        app, ["bounces", "process", str(folder), "--dry-run", "--json"], env=env_for(settings)
    )

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows == [
        {"source": "a.eml", "recipient": "gone@example.net", "kind": "hard", "status": "5.1.1",
         "diagnostic": "550 5.1.1 user unknown", "action": "suppress"},
        {"source": "b.eml", "recipient": "r@example.com", "kind": "policy", "status": "5.7.26",
         "diagnostic": "550 5.7.26 unauthenticated", "action": "alert (never suppress)"},
    ]  # fmt: skip
    assert session.exec(select(Bounce)).all() == []


def test_process_reads_stdin_then_list_and_stats_report_it(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    raw = bounce_file(tmp_path, "c.eml", "gone@example.net", "5.1.1", "550 5.1.1 no such user")
    env = env_for(settings)

    done = runner.invoke(
        app, ["bounces", "process", "-", "--json"], input=raw.read_bytes(), env=env
    )
    listed = runner.invoke(app, ["bounces", "list", "--kind", "hard", "--json"], env=env)
    stats = runner.invoke(app, ["bounces", "stats", "--json"], env=env)

    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)[0]["action"] == "suppressed (no subscriber)"
    assert [r["email"] for r in json.loads(listed.stdout)] == ["gone@example.net"]
    numbers = json.loads(stats.stdout)
    assert numbers["by_kind"]["hard"] == 1
    assert numbers["by_domain"] == {"example.net": {"hard": 1}}


def test_a_bad_path_is_one_line_and_exit_1(tmp_path: Path, settings: Settings) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from digest.cli import main; main()", "bounces", "process",
         str(tmp_path / "nope"), "--dry-run"],
        capture_output=True, text=True, env={**env_for(settings), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr
