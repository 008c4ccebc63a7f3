"""The consent log's hash chain: how one event's hash is computed, and the check of the whole
log. Every event's ``hash`` covers the previous event's hash and every field of its own, so
editing, deleting or reordering any event breaks the chain; ``verify_chain`` names the first
event that does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from digest.store import consent as log

# The fields an event's hash covers, in this order (with the previous hash in front).
HASHED_FIELDS = (
    "subscriber_id",
    "email_hash",
    "at",
    "action",
    "from_status",
    "to_status",
    "source",
    "list_id",
    "ip",
    "user_agent",
    "wording_version",
    "wording_hash",
    "evidence",
)


def event_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The chain hash of one event: sha256 over the previous hash and the canonical JSON of
    ``HASHED_FIELDS`` (datetimes as UTC ISO 8601 with microseconds)."""
    canonical: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = fields.get(name)
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        canonical[name] = value
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class ChainReport:
    """The result of checking the whole log. ``head`` is the newest hash: write it down
    somewhere else now and then, so that cutting off the newest events is detectable too."""

    ok: bool
    events: int
    head: str
    first_bad_id: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def verify_chain(session: Session) -> ChainReport:
    """Recompute every event's hash in order; the report names the first event that breaks."""
    prev = log.GENESIS
    count = 0
    for row in log.iter_event_rows(session):
        count += 1
        problem = None
        if row["prev_hash"] != prev:
            problem = "its prev_hash does not match the event before (deleted or reordered)"
        elif row["hash"] != event_hash(prev, dict(row)):
            problem = "its contents do not match its hash (edited)"
        if problem:
            return ChainReport(
                ok=False, events=count, head=prev, first_bad_id=row["id"], problem=problem
            )
        prev = row["hash"]
    return ChainReport(ok=True, events=count, head=prev)
