"""`digest subscribers add|import|list|show|remove|export|erase|stats`."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import Session

from digest.cli import subscribers_app
from digest.cli.common import console, err_console, now, print_json, settings
from digest.errors import InputError
from digest.models import SubscriberStatus


@contextmanager
def db_session() -> Iterator[Session]:
    """A committed-on-success session on the configured database; the engine is disposed after,
    so no connection outlives the command."""
    from digest.db import make_engine, session_scope

    engine = make_engine(settings())
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def _status(value: str | None) -> SubscriberStatus | None:
    if value is None:
        return None
    try:
        return SubscriberStatus(value.lower())
    except ValueError:
        known = ", ".join(s.value for s in SubscriberStatus)
        raise InputError(f"unknown status {value!r}; use one of: {known}") from None


@subscribers_app.command("add")
def add(
    email: str = typer.Argument(..., help="The address to subscribe."),
    name: str = typer.Option("", "--name", help="The person's name (optional)."),
    confirmed: bool = typer.Option(
        False, "--confirmed", help="Record consent given elsewhere instead of asking by mail."
    ),
    evidence: str = typer.Option(
        "", "--evidence", help="With --confirmed: where and when they agreed (required)."
    ),
) -> None:
    """Subscribe one address (mails a confirmation link, or records consent you hold).

    Without --confirmed a confirmation link is mailed (double opt-in); with --confirmed and
    --evidence the consent you already hold is recorded.

    Example: digest subscribers add ana@example.org --name "Ana"

    Example: digest subscribers add bo@example.org --confirmed --evidence "paper form, 2026-05-01"
    """
    from digest.subscribers import mail, service

    cfg, moment = settings(), now()
    if confirmed:
        with db_session() as session:
            sub = service.add_confirmed(
                session, settings=cfg, email=email, name=name, evidence=evidence,
                source="cli", now=moment,
            )  # fmt: skip
        console.print(f"{sub.email}: confirmed (consent evidence recorded)", highlight=False)
        return
    if evidence:
        raise InputError("--evidence goes with --confirmed; without it a confirmation is mailed")
    with db_session() as session:
        outcome = service.subscribe(
            session, settings=cfg, email=email, name=name, source="cli", now=moment
        )
    if outcome.confirm_url is None:
        console.print(f"{outcome.email}: {outcome.result}; nothing sent", highlight=False)
        return
    mail.send_confirmations_now(
        settings=cfg, messages=[(outcome.email, outcome.name, outcome.confirm_url)], now=moment
    )
    console.print(f"{outcome.email}: pending; confirmation mailed", highlight=False)


@subscribers_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="CSV file with a header row (email required).")],
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row, write nothing."),
    send_confirmations: bool = typer.Option(
        False, "--send-confirmations", help="Mail a confirmation link to rows imported as pending."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import subscribers from a CSV file, all good rows in one transaction.

    Columns: email (required), name, status (pending|confirmed), consent_evidence, consent_at.
    Every row is checked first; bad rows are listed with their line number and reason.

    Example: digest subscribers import people.csv --dry-run
    """
    from digest.subscribers import mail
    from digest.subscribers.importer import import_csv

    cfg, moment = settings(), now()
    with db_session() as session:
        report = import_csv(
            session, settings=cfg, path=path, now=moment, dry_run=dry_run,
            send_confirmations=send_confirmations and not dry_run,
        )  # fmt: skip
        if dry_run:
            session.rollback()
    if report.confirmations:
        mail.send_confirmations_now(settings=cfg, messages=report.confirmations, now=moment)
    if as_json:
        print_json(report.as_dict())
        return
    verb = "would import" if dry_run else "imported"
    console.print(
        f"{report.rows} rows: {verb} {report.imported} ({report.confirmed} confirmed, "
        f"{report.pending} pending), {report.unchanged} already subscribed, "
        f"{len(report.bad)} bad",
        highlight=False,
    )
    for bad in report.bad:
        err_console.print(f"line {bad.line}: {bad.email or '(empty)'}: {bad.reason}",
                          highlight=False, markup=False)  # fmt: skip
    if report.confirmations:
        console.print(f"{len(report.confirmations)} confirmation(s) mailed", highlight=False)


@subscribers_app.command("list")
def list_cmd(
    status: str = typer.Option(None, "--status", help="Only this status (pending, confirmed, …)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: a list of objects."),
    limit: int = typer.Option(None, "--limit", help="At most this many rows (default: all)."),
    offset: int = typer.Option(0, "--offset", help="Skip this many rows first."),
) -> None:
    """List subscribers (every matching row unless --limit is given).

    Example: digest subscribers list --status confirmed --json
    """
    from digest.store.subscribers import list_subscribers
    from digest.subscribers.export import subscriber_dict

    with db_session() as session:
        rows = [
            subscriber_dict(s)
            for s in list_subscribers(session, status=_status(status), limit=limit, offset=offset)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("email", "name", "status", "paused", "since")
    for r in rows:
        table.add_row(r["email"], r["name"], r["status"], "yes" if r["paused"] else "",
                      (r["confirmed_at"] or r["created_at"] or "")[:10])  # fmt: skip
    console.print(table)
    console.print(f"{len(rows)} subscriber(s)", highlight=False)


@subscribers_app.command("show")
def show(
    email: str = typer.Argument(..., help="The subscriber's address."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one subscriber's status and full consent history.

    Example: digest subscribers show ana@example.org --json
    """
    from digest.subscribers.export import person_record

    with db_session() as session:
        record = person_record(session, email=email)
    if as_json:
        print_json(record)
        return
    paused = " (paused)" if record["paused"] else ""
    console.print(f"{record['email']}  {record['name']}  {record['status']}{paused}",
                  highlight=False, markup=False)  # fmt: skip
    table = Table("when (UTC)", "action", "from → to", "source", "ip", "evidence")
    for e in record["events"]:
        table.add_row(e["at"][:19], e["action"], f"{e['from_status'] or 'new'} → {e['to_status']}",
                      e["source"], e["ip"] or "", e["evidence"] or "")  # fmt: skip
    console.print(table)
    for s in record["suppressions"]:
        console.print(f"suppressed: {s['scope']} ({s['reason']})", highlight=False)


@subscribers_app.command("remove")
def remove(email: str = typer.Argument(..., help="The subscriber's address.")) -> None:
    """Unsubscribe someone on their behalf (keeps the record and the consent history).

    Example: digest subscribers remove ana@example.org
    """
    from digest.subscribers import service

    with db_session() as session:
        sub = service.remove(session, settings=settings(), email=email, now=now())
    console.print(f"{sub.email}: {sub.status}", highlight=False)


@subscribers_app.command("export")
def export(
    email: str = typer.Argument(None, help="One person's address (default: everyone)."),
    fmt: str = typer.Option("json", "--format", help="json or csv."),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export everyone, or everything held about one person (GDPR access request).

    Example: digest subscribers export ana@example.org --output ana.json

    Example: digest subscribers export --format csv -o subscribers.csv
    """
    from digest.subscribers.export import EXPORT_FIELDS, everyone, person_record

    if fmt not in ("json", "csv"):
        raise InputError(f"--format {fmt!r}: use json or csv")
    with db_session() as session:
        data: Any = person_record(session, email=email) if email else everyone(session)
    if fmt == "json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        rows = [data] if email else data
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        count = 1 if email else len(data)
        console.print(f"wrote {count} record(s) to {output}", highlight=False)


@subscribers_app.command("erase")
def erase(
    email: str = typer.Argument(..., help="The person's address."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would go; change nothing."),
) -> None:
    """Erase a person's data; only a hash of the address stays suppressed.

    GDPR Art. 17: address and name are deleted; the hash keeps any import from adding them back
    without fresh consent; the consent history stays as evidence, under the hash.

    Example: digest subscribers erase ana@example.org --dry-run
    """
    from digest.subscribers import service
    from digest.subscribers.export import person_record

    with db_session() as session:
        record = person_record(session, email=email)
    summary = (f"{record['email']} ({record['status']}, {len(record['events'])} consent events "
               "kept as evidence under a hash)")  # fmt: skip
    if dry_run:
        console.print(f"would erase {summary}", highlight=False, markup=False)
        return
    if not yes and not typer.confirm(f"Erase {summary}? This cannot be undone"):
        raise typer.Abort()
    with db_session() as session:
        service.erase(session, settings=settings(), email=email, now=now())
    console.print(f"erased {record['email']}; its hash stays suppressed", highlight=False)


@subscribers_app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Count subscribers by status, consent events and suppressions.

    Example: digest subscribers stats
    """
    from digest.subscribers.export import stats as collect

    with db_session() as session:
        numbers = collect(session)
    if as_json:
        print_json(numbers)
        return
    table = Table("status", "subscribers")
    for name, count in numbers["subscribers"].items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(
        f"{numbers['consent_events']} consent events, {numbers['suppressions']} suppressions",
        highlight=False,
    )
