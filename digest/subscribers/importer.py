"""CSV import: validate every row first, then import the good rows in ONE transaction.

Header row; columns ``email`` (required), ``name``, ``status`` (``pending`` or ``confirmed``),
``consent_evidence``, ``consent_at`` (ISO 8601). ``status=confirmed`` needs evidence; rows
without it come in as pending and are mailed a confirmation only when asked to.

Checked per row: address syntax (email-validator, no DNS), duplicates within the file,
suppressed addresses (unsubscribed, bounced, complained, erased), status and date values.
Bad rows are reported with their line number and reason and never imported; the caller's
transaction makes the import all or nothing, so an interrupted import leaves no trace.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session

from digest.errors import InputError
from digest.models import SubscriberStatus
from digest.settings import Settings
from digest.store import subscribers as store
from digest.store import suppressions as supp
from digest.subscribers import consent, service, tokens

COLUMNS = ("email", "name", "status", "consent_evidence", "consent_at")
S = SubscriberStatus


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    name: str
    status: SubscriberStatus
    evidence: str


@dataclass(frozen=True)
class BadRow:
    line: int
    email: str
    reason: str


@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would do)."""

    rows: int = 0
    pending: int = 0
    confirmed: int = 0
    unchanged: int = 0  # already subscribed in the same or a stronger state
    bad: list[BadRow] = field(default_factory=list)
    dry_run: bool = False
    confirmations: list[tuple[str, str, str]] = field(default_factory=list)  # (email, name, url)

    @property
    def imported(self) -> int:
        return self.pending + self.confirmed

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "pending": self.pending,
            "confirmed": self.confirmed,
            "unchanged": self.unchanged,
            "bad": [{"line": b.line, "email": b.email, "reason": b.reason} for b in self.bad],
            "dry_run": self.dry_run,
            "confirmations": len(self.confirmations),
        }


def read_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header is line 1. Raises InputError for a missing file,
    a missing ``email`` column, unknown columns or bytes that are not UTF-8."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            if "email" not in header:
                raise InputError(
                    f"{path}: the header row needs an 'email' column "
                    f"(columns: {', '.join(COLUMNS)})"
                )
            unknown = [h for h in header if h not in COLUMNS]
            if unknown:
                raise InputError(
                    f"{path}: unknown column(s) {', '.join(unknown)}; use: {', '.join(COLUMNS)}"
                )
            reader.fieldnames = header
            for raw in reader:
                row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
                if any(row.values()):  # blank lines are not rows
                    yield reader.line_num, row
        except UnicodeDecodeError:
            raise InputError(
                f"{path}: not UTF-8 text near line {reader.line_num + 1}; save it as UTF-8"
            ) from None
        except csv.Error as exc:
            raise InputError(f"{path}, line {reader.line_num}: {exc}") from None


def check_row(line: int, raw: dict[str, str]) -> Row | BadRow:
    """One row, validated on its own (no database): a Row, or a BadRow saying why not."""
    text = raw.get("email", "")
    try:
        address = consent.normalise_email(
            validate_email(text, check_deliverability=False).normalized
        )
    except EmailNotValidError as exc:
        return BadRow(line, text, f"malformed address: {exc}")
    status_text = raw.get("status", "").lower() or "pending"
    if status_text not in ("pending", "confirmed"):
        return BadRow(line, address, f"status {status_text!r} is not pending or confirmed")
    evidence = raw.get("consent_evidence", "")
    when = raw.get("consent_at", "")
    if when:
        try:
            moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return BadRow(line, address, f"consent_at {when!r} is not an ISO 8601 date")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        evidence = f"{evidence} (consent given {moment.astimezone(UTC).isoformat()})".strip()
    if status_text == "confirmed" and not raw.get("consent_evidence", ""):
        return BadRow(line, address, "status confirmed needs consent_evidence")
    return Row(line, address, raw.get("name", "")[:200], S(status_text), evidence)


def validate(
    session: Session, rows: list[tuple[int, dict[str, str]]], *, newsletter: str
) -> tuple[list[Row], list[BadRow]]:
    """Check every row: syntax, duplicates in the file, suppressions. Reads, never writes."""
    good: list[Row] = []
    bad: list[BadRow] = []
    first_line: dict[str, int] = {}
    for line, raw in rows:
        checked = check_row(line, raw)
        if isinstance(checked, BadRow):
            bad.append(checked)
        elif checked.email in first_line:
            bad.append(
                BadRow(line, checked.email, f"duplicate of line {first_line[checked.email]}")
            )
        else:
            first_line[checked.email] = line
            good.append(checked)
    hashes = {row.email: consent.email_hash(row.email) for row in good}
    blocked = supp.suppressed_hashes(session, hashes=hashes.values(), newsletter=newsletter)
    kept: list[Row] = []
    for row in good:
        if hashes[row.email] in blocked:
            bad.append(BadRow(row.line, row.email, "suppressed (unsubscribed, bounced or erased)"))
        else:
            kept.append(row)
    bad.sort(key=lambda b: b.line)
    return kept, bad


def import_rows(
    session: Session,
    *,
    settings: Settings,
    rows: list[Row],
    now: datetime,
    send_confirmations: bool,
    report: ImportReport,
    progress: Callable[[int], None] | None = None,
    batch: int = 1000,
) -> None:
    """Write the validated rows into the caller's transaction, counting into ``report``;
    ``progress`` hears how many rows are written so far (still uncommitted) after each batch.

    Unknown addresses go in together through ``consent.admit`` (two bulk statements); known
    ones that gain consent go through ``consent.transition`` one by one.
    """
    existing = store.subscribers_by_emails(session, (r.email for r in rows))
    admissions: list[consent.Admission] = []
    for row in rows:
        found = existing.get(row.email)
        confirmed = row.status is S.CONFIRMED
        if found is not None and (found.status == S.CONFIRMED or not confirmed):
            report.unchanged += 1
        elif found is not None:
            consent.transition(
                session, found, S.CONFIRMED, source="import", now=now, evidence=row.evidence,
                list_id=settings.newsletter_id,
            )  # fmt: skip
            report.confirmed += 1
        else:
            token_hash, expires = None, None
            if send_confirmations and not confirmed:
                token, token_hash = tokens.new_confirm_token()
                expires = now + timedelta(hours=tokens.CONFIRM_TTL_HOURS)
                url = service.confirm_url(settings=settings, token=token)
                report.confirmations.append((row.email, row.name, url))
            admissions.append(
                consent.Admission(
                    email=row.email, name=row.name, status=row.status,
                    evidence=row.evidence or None, confirm_token_hash=token_hash,
                    confirm_token_expires_at=expires,
                )
            )  # fmt: skip
            if confirmed:
                report.confirmed += 1
            else:
                report.pending += 1
    written = report.confirmed + report.pending - len(admissions)
    if progress is not None and written:
        progress(written)
    for start in range(0, len(admissions), batch):
        chunk = admissions[start : start + batch]
        consent.admit(session, chunk, source="import", now=now, list_id=settings.newsletter_id)
        written += len(chunk)
        if progress is not None:
            progress(written)


def import_csv(
    session: Session,
    *,
    settings: Settings,
    path: Path,
    now: datetime,
    dry_run: bool = False,
    send_confirmations: bool = False,
    progress: Callable[[int], None] | None = None,
    batch: int = 1000,
) -> ImportReport:
    """Validate ``path`` and import its good rows into the caller's transaction.

    With ``dry_run`` nothing is written (the caller should roll back anyway). Confirmation
    links are collected in the report, to be mailed only after the transaction commits.
    Raises InputError for a file that cannot be read as CSV with an ``email`` column.
    """
    raw_rows = list(read_csv(path))
    good, bad = validate(session, raw_rows, newsletter=settings.newsletter_id)
    report = ImportReport(rows=len(raw_rows), bad=bad, dry_run=dry_run)
    if dry_run:
        existing = store.subscribers_by_emails(session, (r.email for r in good))
        for row in good:
            found = existing.get(row.email)
            if found is not None and (found.status == S.CONFIRMED or row.status is S.PENDING):
                report.unchanged += 1
            elif row.status is S.CONFIRMED:
                report.confirmed += 1
            else:
                report.pending += 1
        return report
    import_rows(
        session,
        settings=settings,
        rows=good,
        now=now,
        send_confirmations=send_confirmations,
        report=report,
        progress=progress,
        batch=batch,
    )
    return report
