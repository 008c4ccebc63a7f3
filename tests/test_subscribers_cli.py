"""`digest subscribers|suppressions|consent` as an operator uses them (real database file,
real SMTP sink for the confirmations)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from support_cli import env_for
from typer.testing import CliRunner

from digest.cli import app
from digest.errors import CheckFailed, NotFound
from digest.settings import Settings
from digest.subscribers import consent

runner = CliRunner()


@pytest.fixture
def env(settings: Settings, engine: Engine, smtp_sink: Any) -> dict[str, str]:
    return env_for(
        settings,
        DIGEST_SMTP_PORT=str(smtp_sink.port),
        DIGEST_TRANSACTIONAL_FROM_EMAIL="confirm@news.example.org",
    )


def digest(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    result = runner.invoke(app, list(args), env=env, input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def as_json(env: dict[str, str], *args: str) -> Any:
    result = digest(env, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_mails_a_confirmation_and_add_confirmed_records_evidence(
    env: dict[str, str], smtp_sink: Any
) -> None:
    assert digest(env, "subscribers", "add", "Ana@Example.org", "--name", "Ana").exit_code == 0
    assert smtp_sink.recipients() == ["ana@example.org"]
    mail_from, _, data = smtp_sink.messages[0]
    assert mail_from == "confirm@news.example.org" and b"/confirm/" in data
    added = digest(env, "subscribers", "add", "bo@example.org", "--confirmed",
                   "--evidence", "paper form, 2026-05-01")  # fmt: skip
    assert added.exit_code == 0
    rows = as_json(env, "subscribers", "list")
    assert [(r["email"], r["status"]) for r in rows] == [
        ("ana@example.org", "pending"), ("bo@example.org", "confirmed"),
    ]  # fmt: skip
    assert [r["email"] for r in as_json(env, "subscribers", "list", "--status", "confirmed")] == [
        "bo@example.org"
    ]
    shown = as_json(env, "subscribers", "show", "bo@example.org")
    assert shown["email"] == "bo@example.org" and shown["status"] == "confirmed"
    assert shown["events"][0]["evidence"] == "paper form, 2026-05-01"


def test_errors_are_one_line_and_exit_1(env: dict[str, str]) -> None:
    command = [sys.executable, "-c", "from digest.cli import main; main()"]
    for args, expected in [
        (["subscribers", "add", "x@example.org", "--confirmed"], "needs consent evidence"),
        (["subscribers", "show", "nobody@example.org"], "no subscriber nobody@example.org"),
        (["subscribers", "list", "--status", "happy"], "unknown status 'happy'"),
    ]:
        done = subprocess.run(
            command + args, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr


def test_import_reports_bad_rows_and_a_dry_run_writes_nothing(
    env: dict[str, str], tmp_path: Path, smtp_sink: Any
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,status,consent_evidence\n"
        "a@example.org,A,,\nbad@,B,,\nc@example.org,C,confirmed,fair stand\n"
    )
    dry = digest(env, "subscribers", "import", str(path), "--dry-run")
    assert dry.exit_code == 0 and "would import 2" in dry.stdout
    assert "line 3: bad@: malformed address" in dry.stderr
    assert as_json(env, "subscribers", "list") == []
    report = as_json(env, "subscribers", "import", str(path), "--send-confirmations")
    assert (report["imported"], report["confirmed"], report["confirmations"]) == (2, 1, 1)
    assert report["bad"][0]["line"] == 3
    assert smtp_sink.recipients() == ["a@example.org"]


def test_remove_export_and_stats(env: dict[str, str], tmp_path: Path) -> None:
    for address in ("a@example.org", "b@example.org"):
        digest(env, "subscribers", "add", address, "--confirmed", "--evidence", "form")
    assert digest(env, "subscribers", "remove", "a@example.org").exit_code == 0
    assert as_json(env, "subscribers", "show", "a@example.org")["status"] == "unsubscribed"
    out = tmp_path / "a.json"
    assert digest(env, "subscribers", "export", "a@example.org", "-o", str(out)).exit_code == 0
    record = json.loads(out.read_text())
    assert [e["action"] for e in record["events"]] == ["confirmed", "unsubscribed"]
    assert record["suppressions"][0]["scope"] == "friday"
    table = digest(env, "subscribers", "export", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [(r["email"], r["status"]) for r in rows] == [
        ("a@example.org", "unsubscribed"), ("b@example.org", "confirmed"),
    ]  # fmt: skip
    numbers = as_json(env, "subscribers", "stats")
    assert numbers["subscribers"]["confirmed"] == 1 and numbers["consent_events"] == 3


def test_erase_leaves_only_a_hash_that_blocks_reimport(env: dict[str, str], tmp_path: Path) -> None:
    digest(env, "subscribers", "add", "ana@example.org", "--confirmed", "--evidence", "form")
    dry = digest(env, "subscribers", "erase", "ana@example.org", "--dry-run")
    assert "would erase ana@example.org" in dry.stdout
    refused = digest(env, "subscribers", "erase", "ana@example.org", input="n\n")
    assert refused.exit_code != 0
    assert digest(env, "subscribers", "erase", "ana@example.org", "--yes").exit_code == 0
    assert as_json(env, "subscribers", "list") == []
    export = digest(env, "subscribers", "export").stdout
    assert "ana" not in export
    hashes = as_json(env, "suppressions", "list")
    assert hashes == [{"email_hash": consent.email_hash("ana@example.org"), "scope": "global",
                       "reason": "erased", "created_at": hashes[0]["created_at"]}]  # fmt: skip
    path = tmp_path / "again.csv"
    path.write_text("email,status,consent_evidence\nana@example.org,confirmed,old list\n")
    report = as_json(env, "subscribers", "import", str(path))
    assert report["imported"] == 0 and report["bad"][0]["reason"].startswith("suppressed")


def test_suppressions_add_list_remove(env: dict[str, str]) -> None:
    assert digest(env, "suppressions", "add", "x@example.org", "--reason", "asked").exit_code == 0
    digest(env, "suppressions", "add", "x@example.org", "--scope", "friday")
    assert {r["scope"] for r in as_json(env, "suppressions", "list")} == {"global", "friday"}
    assert (
        digest(env, "suppressions", "remove", "x@example.org", "--scope", "global").exit_code == 0
    )
    assert [r["scope"] for r in as_json(env, "suppressions", "list")] == ["friday"]
    with pytest.raises(NotFound, match="y@example.org is not suppressed"):
        digest(env, "suppressions", "remove", "y@example.org")


def test_consent_verify_passes_then_names_the_tampered_event(
    env: dict[str, str], engine: Engine
) -> None:
    for n in range(3):
        digest(env, "subscribers", "add", f"p{n}@example.org", "--confirmed", "--evidence", "form")
    good = digest(env, "consent", "verify")
    assert good.exit_code == 0 and good.stdout.startswith("ok: 3 events, head ")
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE consent_events DISABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER consent_events_no_update"))
        conn.execute(sa.text("UPDATE consent_events SET evidence = 'forged' WHERE id = 2"))
        if conn.dialect.name == "postgresql":  # the schema outlives this test there
            conn.execute(sa.text("ALTER TABLE consent_events ENABLE TRIGGER USER"))
    result = runner.invoke(app, ["consent", "verify", "--json"], env=env)
    assert isinstance(result.exception, CheckFailed) and "event 2" in str(result.exception)
    assert json.loads(result.stdout)["first_bad_id"] == 2
