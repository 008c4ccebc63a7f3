"""The walking skeleton end to end: files → store → issue → SMTP, through real parts."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

from sqlmodel import select

from digest.db import make_engine, session_scope
from digest.demo import demo_settings
from digest.models import Delivery, DeliveryStatus, Issue
from digest.pipeline import build_issue, ingest_paths, send_issue
from digest.settings import Settings

NOW = datetime(2026, 3, 13, 7, 0, tzinfo=UTC)  # a Friday morning

TOPICS = [
    ("Harbour bridge reopens after repairs", "The harbour bridge reopened on Tuesday after "
     "eight months of repairs to its cables. Engineers replaced every suspension rope. Traffic "
     "returned to normal by the evening rush hour."),
    ("City council approves new bus lanes", "The city council voted to add bus lanes on four "
     "main roads. Buses will run every five minutes at peak times. Work starts in the spring."),
    ("Library extends opening hours", "The central library will open until ten at night from "
     "next month. Students asked for longer hours during exams. The council found the money."),
    ("River clean-up draws hundreds of volunteers", "More than four hundred volunteers cleared "
     "rubbish from the river banks on Saturday. They filled two hundred bags. Fish have "
     "returned to the lower river."),
    ("Local bakery wins national award", "A family bakery on Mill Street won the national prize "
     "for its sourdough bread. The owners thanked their customers. Queues formed at dawn."),
]


def write_week(folder: Path) -> Path:
    path = folder / "week.jsonl"
    lines = []
    for n, (title, body) in enumerate(TOPICS):
        lines.append(json.dumps({
            "title": title, "text": body, "url": f"https://paper{n % 3}.example.com/a/{n}",
            "published": f"2026-03-{9 + n % 4:02d}T10:00:00+00:00",
        }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def confirmed(settings: Settings, emails: list[str]) -> None:
    from digest.subscribers.lifecycle import add_confirmed

    with session_scope(make_engine(settings)) as session:
        for address in emails:
            add_confirmed(session, settings=settings, email=address, evidence="test",
                          source="cli", now=NOW)  # fmt: skip


def test_a_week_goes_from_files_to_every_subscribers_inbox_once(
    settings: Settings, smtp_sink, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    # Signed (the pre-send check refuses unsigned mail), with the demo's way of making a key.
    settings = demo_settings(settings.model_copy(update={"smtp_port": smtp_sink.port}))
    report = ingest_paths([write_week(tmp_path)], settings=settings, now=NOW)
    assert (report.new, report.failed) == (5, [])

    built = build_issue(settings=settings, now=NOW, force=True)
    assert built.issue is not None and built.picked >= 3

    confirmed(settings, ["ann@example.org", "bob@example.org"])
    first = send_issue(settings=settings, now=NOW)
    assert first.sent == 2
    assert sorted(smtp_sink.recipients()) == ["ann@example.org", "bob@example.org"]

    again = send_issue(settings=settings, now=NOW)
    assert again.sent == 0
    assert len(smtp_sink.messages) == 2

    with session_scope(make_engine(settings)) as session:
        rows = session.exec(select(Delivery)).all()
        assert {r.status for r in rows} == {DeliveryStatus.SENT}
        assert session.exec(select(Issue)).one().status == "sent"

    message: Message = email.message_from_bytes(smtp_sink.messages[0][2])
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.walk() if not p.is_multipart()]
    assert parts == ["text/plain", "text/html"]
    assert message["Message-ID"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://news.example.org/u/" in message["List-Unsubscribe"]
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            assert settings.postal_address in payload.decode()


def test_ingesting_the_same_files_twice_adds_no_rows(settings: Settings, tmp_path: Path) -> None:
    path = write_week(tmp_path)
    ingest_paths([path], settings=settings, now=NOW)
    second = ingest_paths([path], settings=settings, now=NOW)
    assert (second.new, second.updated, second.duplicates) == (0, 0, 5)


def test_a_bad_row_is_reported_and_the_rest_is_stored(settings: Settings, tmp_path: Path) -> None:
    path = write_week(tmp_path)
    path.write_text(path.read_text() + "{not json\n")
    report = ingest_paths([path], settings=settings, now=NOW)
    assert report.new == 5
    assert len(report.failed) == 1 and "week.jsonl:6" in report.failed[0][0]
