"""`digest suppressions list|add|remove`: addresses (kept as hashes) that must not get mail."""

from __future__ import annotations

import typer
from rich.table import Table

from digest.cli import app
from digest.cli.common import console, now, print_json
from digest.cli.subscribers import db_session
from digest.errors import NotFound

suppressions_app = typer.Typer(
    help="Addresses that must not receive mail (kept as hashes).", no_args_is_help=True
)
app.add_typer(suppressions_app, name="suppressions")


@suppressions_app.command("list")
def list_cmd(
    scope: str = typer.Option(None, "--scope", help="Only 'global' or one newsletter id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List suppressions (addresses shown as their sha256 hash).

    Global ones come from hard bounces, complaints and erasures; per-newsletter ones from
    unsubscribes.

    Example: digest suppressions list --scope global --json
    """
    from digest.store.suppressions import list_suppressions

    with db_session() as session:
        rows = [
            {"email_hash": s.email_hash, "scope": s.scope, "reason": s.reason,
             "created_at": s.created_at.isoformat()}
            for s in list_suppressions(session, scope=scope)
        ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table = Table("email hash", "scope", "reason", "since")
    for r in rows:
        table.add_row(r["email_hash"][:16] + "…", r["scope"], r["reason"], r["created_at"][:10])
    console.print(table)
    console.print(f"{len(rows)} suppression(s)", highlight=False)


@suppressions_app.command("add")
def add(
    email: str = typer.Argument(..., help="The address to suppress."),
    scope: str = typer.Option("global", "--scope", help="'global' or a newsletter id."),
    reason: str = typer.Option("manual", "--reason", help="Why (shown in lists and logs)."),
) -> None:
    """Stop all mail (or one newsletter's) to an address, now and after any re-import.

    Example: digest suppressions add ana@example.org --reason "asked by phone"
    """
    from digest.subscribers import consent
    from digest.subscribers.recipients import parse_address

    address = parse_address(email)
    with db_session() as session:
        consent.suppress(session, email=address, scope=scope, reason=reason[:40], now=now())
    console.print(f"{address}: suppressed ({scope})", highlight=False)


@suppressions_app.command("remove")
def remove(
    email: str = typer.Argument(..., help="The address to allow again."),
    scope: str = typer.Option(None, "--scope", help="Only this scope (default: every scope)."),
) -> None:
    """Lift a suppression, e.g. after the person consented again.

    Their status does not change: they still have to confirm (or be added with --confirmed
    and evidence).

    Example: digest suppressions remove ana@example.org --scope friday
    """
    from digest.store.suppressions import remove_suppression
    from digest.subscribers import consent

    with db_session() as session:
        removed = remove_suppression(session, email_hash=consent.email_hash(email), scope=scope)
    if not removed:
        raise NotFound(f"{email} is not suppressed (see: digest suppressions list)")
    console.print(f"{email}: {removed} suppression(s) lifted", highlight=False)
