"""Helpers for the scheduler tests: the week they live in, a week of articles written here,
confirmed subscribers, a task context on a controlled clock, and reading what the SMTP sink got."""

from __future__ import annotations

import email
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from conftest import SmtpSink
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from digest.db import make_engine, session_scope
from digest.demo import demo_settings
from digest.models import Issue
from digest.send.smtp import Sender
from digest.settings import Settings
from digest.store.articles import ArticleData, upsert_article
from jobs.calendar import week_start
from jobs.notify import MemoryNotifier
from jobs.tasks import TaskContext

LONDON = ZoneInfo("Europe/London")
WEEK = "2026-W48"
MONDAY = datetime(2026, 11, 23, 9, tzinfo=LONDON)
SEND = datetime(2026, 11, 27, 8, tzinfo=LONDON)
READERS = ["ada@example.net", "bo@example.net", "cy@example.net"]

# Distinct vocabulary per story, so that no two stories look like the same wire copy.
_TOPICS = [
    ("harbour", "ferry", "dock", "tide", "crane"),
    ("orchard", "apple", "harvest", "cider", "frost"),
    ("library", "archive", "reading", "shelf", "ledger"),
    ("tramway", "junction", "timetable", "depot", "signal"),
    ("observatory", "telescope", "comet", "lens", "dome"),
    ("bakery", "flour", "oven", "loaf", "yeast"),
]
_SOURCES = ["Coast Courier", "Valley Times", "City Ledger"]


def add_week_of_articles(settings: Settings, *, week: str, now: datetime) -> None:
    """Six stories published on the Monday to Wednesday of ``week``, from three outlets."""
    monday = week_start(week, settings=settings)
    engine = make_engine(settings)
    with _disposing(engine), session_scope(engine) as session:
        for n, words in enumerate(_TOPICS):
            a, b, c, d, e = words
            body = " ".join(
                f"In {week} the {a} council reviewed the {b} plan, the {c} budget and the {d} "
                f"works; residents asked about the {e} schedule and paragraph {p} of the report."
                for p in range(12)
            )
            upsert_article(
                session,
                ArticleData(
                    key=f"https://news.example.org/{week}/{a}",
                    title=f"{a.title()} council backs {b} plan for {week}",
                    body=body,
                    source_name=_SOURCES[n % len(_SOURCES)],
                    url=f"https://news.example.org/{week}/{a}",
                    published_at=monday + timedelta(hours=9 + 11 * n),
                ),
                now=now,
            )


def add_subscribers(settings: Settings, emails: list[str], *, now: datetime) -> None:
    from digest.subscribers.lifecycle import add_confirmed

    engine = make_engine(settings)
    with _disposing(engine), session_scope(engine) as session:
        for address in emails:
            add_confirmed(
                session, settings=settings, email=address, evidence="test fixture",
                source="import", now=now,
            )  # fmt: skip


def prepared(
    settings: Settings, smtp_sink: SmtpSink, *, on: datetime = MONDAY, **overrides: object
) -> Settings:
    """Signed settings that send to ``smtp_sink`` (three stories make an issue), with READERS
    subscribed and a week of articles in WEEK, both added at ``on``."""
    s = settings.model_copy(update={"smtp_port": smtp_sink.port, "min_stories": 3, **overrides})
    s = demo_settings(s)  # signed: the pre-send check refuses unsigned mail
    with at(Clock(on), on):
        add_subscribers(s, READERS, now=on)
        add_week_of_articles(s, week=WEEK, now=on)
    return s


@contextmanager
def _disposing(engine: Engine) -> Iterator[Engine]:
    try:
        yield engine
    finally:
        engine.dispose()


class Clock:
    """The tasks' clock, moved by the test (and time-machine for the pipeline's own reads)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def at(clock: Clock, moment: datetime) -> Iterator[None]:
    """Run the block at ``moment``: the tasks' clock and the wall clock both say so."""
    clock.now = moment
    with time_machine.travel(moment, tick=False):
        yield


def context(
    settings: Settings, *, clock: Clock, engine: Engine, sender: Sender | None = None
) -> tuple[TaskContext, MemoryNotifier]:
    """A task context on ``clock`` whose notices are kept; ``engine`` is the test's own (the
    ``engine`` fixture disposes of it)."""
    notifier = MemoryNotifier()
    ctx = TaskContext(
        settings=settings, engine=engine, notifier=notifier, clock=clock, sender=sender
    )
    return ctx, notifier


def issues(engine: Engine) -> list[Issue]:
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(select(Issue).order_by(Issue.week)))


def received(messages: list[tuple[str, list[str], bytes]]) -> Counter[tuple[str, str]]:
    """How many times each (recipient, subject) pair arrived."""
    counts: Counter[tuple[str, str]] = Counter()
    for _from, rcpts, data in messages:
        subject = str(email.message_from_bytes(data)["Subject"])
        for rcpt in rcpts:
            counts[(rcpt, subject)] += 1
    return counts


def eventually(check: Callable[[], bool], *, within: float = 30.0) -> bool:
    """Poll ``check`` until it holds or ``within`` seconds pass (a bound, not an assertion)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture(autouse=True)
def dispose_pipeline_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``digest.pipeline`` makes an engine per call and leaves its pool open; on PostgreSQL the
    pooled connections then warn when garbage-collected (warnings are errors here). Record the
    engines it makes and dispose of them after the test. Behaviour is unchanged: a disposed
    engine reconnects if used again."""
    import digest.pipeline

    made: list[Engine] = []

    def tracking(settings: Settings, **kwargs: object) -> Engine:
        engine = make_engine(settings, **kwargs)  # type: ignore[arg-type]
        made.append(engine)
        return engine

    monkeypatch.setattr(digest.pipeline, "make_engine", tracking)
    yield
    for engine in made:
        engine.dispose()
