"""`digest demo` on a bare data folder: a real week of news, built, sent to a local sink."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run(args: list[str], *, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIGEST_DATA_DIR": str(data), "DIGEST_BASE_URL": "https://news.example.org"}
    env.pop("DIGEST_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-c", "from digest.cli import main; main()", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_demo_sends_the_busiest_week_to_every_demo_subscriber_once(tmp_path: Path) -> None:
    data = tmp_path / "var"
    done = run(["demo", "--subscribers", "3"], data=data)
    assert done.returncode == 0, done.stderr
    assert "2017-W11" in done.stdout and "3 of 3 messages delivered" in done.stdout

    outbox = sorted((data / "outbox").glob("*.eml"))
    assert len(outbox) == 3
    message = email.message_from_bytes(outbox[0].read_bytes())
    assert message["DKIM-Signature"] and message["List-Unsubscribe"]
    assert (data / "previews" / "2017-W11.html").is_file()

    shown = run(["issue", "show", "--json"], data=data)
    issue = json.loads(shown.stdout)
    assert issue["week"] == "2017-W11" and issue["status"] == "sent"
    assert 8 <= len(issue["items"]) <= 12
    outlets = [item["source"] for item in issue["items"]]
    assert max(outlets.count(o) for o in outlets) <= 0.3 * len(outlets) + 1e-9

    again = run(["issue", "send"], data=data)
    assert again.returncode == 0, again.stderr
    assert len(list((data / "outbox").glob("*.eml"))) == 3


def test_the_demo_can_prepare_without_sending(tmp_path: Path) -> None:
    data = tmp_path / "var"
    done = run(["demo", "--subscribers", "25", "--no-send"], data=data)
    assert done.returncode == 0, done.stderr
    assert not list((data / "outbox").glob("*.eml"))
    listed = run(["subscribers", "list", "--status", "confirmed", "--json"], data=data)
    assert len(json.loads(listed.stdout)) == 25
