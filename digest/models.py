"""SQLModel tables and the status enums they use. This module owns every status value.

Timestamps are stored as UTC and always come back timezone-aware (``UTCDateTime``), on SQLite
as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: one behaviour on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _when(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def _status(default: StrEnum) -> Any:
    return Field(default=default, sa_type=sa.String(24), index=True)


# --- statuses -------------------------------------------------------------------------------


class SourceKind(StrEnum):
    FEED = "feed"
    PAGE = "page"
    DUMP = "dump"


class IssueStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"
    MISSED = "missed"


class EditKind(StrEnum):
    """An editor's change to a draft issue (re-applied whenever the draft is rebuilt)."""

    PIN = "pin"
    DROP = "drop"
    MOVE = "move"
    BLURB = "blurb"
    SUBJECT = "subject"
    PREHEADER = "preheader"
    BOOST = "boost"


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED_TEMPORARY = "failed_temporary"
    FAILED_PERMANENT = "failed_permanent"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"


class BounceKind(StrEnum):
    HARD = "hard"
    SOFT = "soft"
    POLICY = "policy"
    COMPLAINT = "complaint"
    UNKNOWN = "unknown"


# --- tables ---------------------------------------------------------------------------------


class Source(SQLModel, table=True):
    __tablename__ = "sources"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    kind: SourceKind = Field(sa_type=sa.String(16))
    location: str = Field(max_length=2000)
    section: str | None = Field(default=None, max_length=100)
    weight: float = 1.0
    fetch_full: bool = False
    interval_minutes: int | None = None
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=200)
    last_checked_at: datetime | None = _when()
    last_success_at: datetime | None = _when()
    last_error: str | None = Field(default=None, max_length=2000)
    last_error_at: datetime | None = _when()
    consecutive_failures: int = 0
    created_at: datetime = _created()


class Article(SQLModel, table=True):
    __tablename__ = "articles"

    id: int | None = Field(default=None, primary_key=True)
    # Identity: the canonical URL, or a content hash for dumps without one. Unique, so that
    # ingesting the same article twice updates the row instead of adding another.
    key: str = Field(unique=True, max_length=2100)
    source_id: int | None = Field(default=None, foreign_key="sources.id", index=True)
    source_name: str = Field(default="", max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    title: str = Field(max_length=1000)
    body: str = Field(sa_type=sa.Text)
    summary: str | None = Field(default=None, sa_type=sa.Text)
    credit: str | None = Field(default=None, max_length=500)
    author: str | None = Field(default=None, max_length=500)
    section: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=16)
    image_url: str | None = Field(default=None, max_length=2000)
    image_alt: str | None = Field(default=None, max_length=1000)
    published_at: datetime | None = _when(index=True)
    first_seen_at: datetime = _created()
    updated_at: datetime = _created()
    word_count: int = 0
    content_hash: str = Field(max_length=64)
    # Near-duplicate link (same wire story elsewhere): the earlier article it repeats.
    duplicate_of_id: int | None = Field(default=None, foreign_key="articles.id")
    signature: list[int] | None = Field(default=None, sa_column=Column(JSON))


class Issue(SQLModel, table=True):
    __tablename__ = "issues"
    __table_args__ = (sa.UniqueConstraint("newsletter", "week", name="uq_issue_week"),)

    id: int | None = Field(default=None, primary_key=True)
    newsletter: str = Field(max_length=64)
    week: str = Field(max_length=10, description="ISO week key, e.g. 2017-W06")
    status: IssueStatus = _status(IssueStatus.DRAFT)
    subject: str = Field(default="", max_length=300)
    preheader: str = Field(default="", max_length=300)
    window_start: datetime | None = _when()
    window_end: datetime | None = _when()
    mjml: str = Field(default="", sa_type=sa.Text)
    html: str = Field(default="", sa_type=sa.Text)
    text: str = Field(default="", sa_type=sa.Text)
    content_hash: str = Field(default="", max_length=64)
    # The best stories the selection left out, with why (``digest issue explain``).
    left_out: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    built_at: datetime | None = _when()
    scheduled_for: datetime | None = _when()
    send_started_at: datetime | None = _when()
    sent_at: datetime | None = _when()
    created_at: datetime = _created()


class IssueItem(SQLModel, table=True):
    __tablename__ = "issue_items"
    __table_args__ = (sa.UniqueConstraint("issue_id", "article_id", name="uq_item_article"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", index=True)
    article_id: int = Field(foreign_key="articles.id")
    position: int
    section: str = Field(default="", max_length=100)
    title: str = Field(max_length=1000)
    url: str = Field(max_length=2000)
    source_name: str = Field(max_length=200)
    blurb: str = Field(sa_type=sa.Text)
    image_url: str | None = Field(default=None, max_length=2000)
    image_alt: str | None = Field(default=None, max_length=1000)
    also_reported_by: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    score: float = 0.0
    score_parts: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    pinned: bool = False


class IssueEdit(SQLModel, table=True):
    """An editor's pin, drop, move or wording on a draft; kept so a rebuild re-applies it.

    One row per (issue, article, kind): a newer edit of the same kind replaces the older one.
    Subject and preheader edits have no article.
    """

    __tablename__ = "issue_edits"

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", index=True)
    article_id: int | None = Field(default=None, foreign_key="articles.id")
    kind: EditKind = Field(sa_type=sa.String(16))
    position: int | None = None
    text: str | None = Field(default=None, sa_type=sa.Text)
    amount: float | None = None  # a boost's size
    created_at: datetime = _created()


class Subscriber(SQLModel, table=True):
    __tablename__ = "subscribers"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)
    # sha256 of the normalised address: lets the recipient query exclude suppressions in SQL.
    email_hash: str = Field(default="", max_length=64, index=True)
    name: str = Field(default="", max_length=200)
    status: SubscriberStatus = _status(SubscriberStatus.PENDING)
    paused: bool = False
    confirm_token_hash: str | None = Field(default=None, max_length=64, index=True)
    confirm_token_expires_at: datetime | None = _when()
    soft_bounces: int = 0
    created_at: datetime = _created()
    confirmed_at: datetime | None = _when()
    updated_at: datetime = _created()
    erased_at: datetime | None = _when()


class ConsentEvent(SQLModel, table=True):
    """Append-only evidence of consent. Rows are chained: ``hash`` covers ``prev_hash``."""

    __tablename__ = "consent_events"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int | None = Field(default=None, foreign_key="subscribers.id", index=True)
    email_hash: str = Field(max_length=64, index=True)
    at: datetime = _created()
    action: str = Field(max_length=40)
    from_status: str | None = Field(default=None, max_length=24)
    to_status: str = Field(max_length=24)
    source: str = Field(max_length=40)
    list_id: str = Field(max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    wording_version: str | None = Field(default=None, max_length=40)
    wording_hash: str | None = Field(default=None, max_length=64)
    evidence: str | None = Field(default=None, sa_type=sa.Text)
    # Unique: no two events can claim the same predecessor, so the chain cannot fork.
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)


class Suppression(SQLModel, table=True):
    """Addresses that must not receive mail; kept as a hash so it outlives erasure."""

    __tablename__ = "suppressions"
    __table_args__ = (sa.UniqueConstraint("email_hash", "scope", name="uq_suppression"),)

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64, index=True)
    scope: str = Field(max_length=64, description="'global' or a newsletter id")
    reason: str = Field(max_length=40)
    created_at: datetime = _created()


class Delivery(SQLModel, table=True):
    """The ledger: one row per (issue, subscriber), written before SMTP sees the message."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("issue_id", "subscriber_id", name="uq_delivery"),
        sa.Index("ix_delivery_claim", "issue_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id")
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    email: str = Field(max_length=320)
    status: DeliveryStatus = Field(default=DeliveryStatus.QUEUED, sa_type=sa.String(24))
    attempts: int = 0
    message_id: str | None = Field(default=None, max_length=300, index=True)
    worker: str | None = Field(default=None, max_length=100)
    claimed_at: datetime | None = _when()
    next_attempt_at: datetime | None = _when()
    sent_at: datetime | None = _when()
    last_code: int | None = None
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _created()


class TestSend(SQLModel, table=True):
    """A single copy sent from the preview or ``--test-to``; never touches the ledger."""

    __tablename__ = "test_sends"

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", index=True)
    email: str = Field(max_length=320)
    sent_at: datetime = _created()
    requested_by: str = Field(default="", max_length=100)


class Bounce(SQLModel, table=True):
    __tablename__ = "bounces"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int | None = Field(default=None, foreign_key="deliveries.id", index=True)
    issue_id: int | None = Field(default=None, foreign_key="issues.id")
    email: str = Field(max_length=320, index=True)
    kind: BounceKind = Field(sa_type=sa.String(16))
    status: str | None = Field(default=None, max_length=16)
    diagnostic: str | None = Field(default=None, sa_type=sa.Text)
    source: str = Field(default="", max_length=500)
    action: str = Field(default="", max_length=40)
    received_at: datetime = _created()


class Lease(SQLModel, table=True):
    """A named lock with an expiry: the scheduler's leader lease on SQLite."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=200)
    expires_at: datetime = _when(nullable=False)


class SeenBlock(SQLModel, table=True):
    """A text block (normalised line) seen in articles of one source. Blocks that recur across
    many articles of the same source are boilerplate, learned without any phrase list."""

    __tablename__ = "seen_blocks"
    __table_args__ = (sa.UniqueConstraint("source_name", "block_hash", name="uq_seen_block"),)

    id: int | None = Field(default=None, primary_key=True)
    source_name: str = Field(max_length=200, index=True)
    block_hash: str = Field(max_length=40)
    articles: int = 0
    last_seen_at: datetime = _created()
