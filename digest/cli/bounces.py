"""`digest bounces process|list|stats`."""

from __future__ import annotations

import typer
from rich.table import Table

from digest.cli import app
from digest.cli.common import console, err_console, now, print_json, settings
from digest.errors import InputError
from digest.models import BounceKind

bounces_app = typer.Typer(
    help="Bounces and complaints: read them, act on them, report on them.", no_args_is_help=True
)
app.add_typer(bounces_app, name="bounces")

JSON_FIELDS = ("source", "recipient", "kind", "status", "diagnostic", "action")


@bounces_app.command("process")
def process_cmd(
    path: str = typer.Argument(
        None, help="A message, a folder of .eml, a Maildir, an mbox, or - for stdin."
    ),
    imap: bool = typer.Option(
        False, "--imap", help="Read the configured bounce mailbox (IMAP over TLS) instead."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Classify and print; change nothing."),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON list, one entry per recipient."
    ),
) -> None:
    """Read bounce and complaint mail, classify each bounced recipient and act on it: hard →
    suppress now, soft → count, complaint → suppress everywhere, policy → alert, never suppress.
    Mail to the List-Unsubscribe address (unsubscribe@ the From domain, subject
    unsubscribe-TOKEN) unsubscribes the person its token names, like the one-click link.

    Example: digest bounces process ./bounces/ --dry-run --json

    Example: digest bounces process --imap   (handled mail moves to the Processed folder)
    """
    from digest.bounces.apply import poll_mailbox, process
    from digest.bounces.sources import read_path
    from digest.db import make_engine

    cfg = settings()
    if imap == (path is not None):
        raise InputError("give a PATH (file, folder, Maildir, mbox or -) or --imap, not both")
    engine = None if dry_run else make_engine(cfg)
    try:
        if imap:
            report = poll_mailbox(settings=cfg, engine=engine, clock=now, dry_run=dry_run)
        else:
            messages = read_path(path)
            report = process(messages, settings=cfg, now=now(), engine=engine, dry_run=dry_run)
    finally:
        if engine is not None:
            engine.dispose()
    for alert in report.alerts:
        err_console.print(f"[bold red]ALERT[/]: {alert}", highlight=False)
    for request in report.unsubscribes:
        if request.refused:
            err_console.print(request.detail, highlight=False, markup=False, soft_wrap=True)
    if as_json:
        rows = [o.as_dict() for o in report.outcomes] + [u.as_dict() for u in report.unsubscribes]
        print_json([{k: row[k] for k in JSON_FIELDS} for row in rows])
        return
    table = Table("source", "recipient", "kind", "status", "action", "why")
    for o in report.outcomes:
        table.add_row(o.source, o.recipient, o.kind, o.status or "", o.action, o.rule)
    for u in report.unsubscribes:
        who = u.recipient or (f"subscriber {u.subscriber_id}" if u.subscriber_id else "")
        table.add_row(u.source, who, "unsubscribe", "", u.action, "mailto List-Unsubscribe")
    console.print(table)
    skipped = f"; {len(report.not_bounces)} held no bounce" if report.not_bounces else ""
    mode = " (dry run: nothing changed)" if dry_run else ""
    console.print(f"{report.summary()}{skipped}{mode}", highlight=False, soft_wrap=True)


@bounces_app.command("list")
def list_cmd(
    kind: BounceKind = typer.Option(None, "--kind", help="Only this kind."),  # noqa: B008
    issue: str = typer.Option(None, "--issue", help="Issue id or week (e.g. 2017-W11)."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List recorded bounces, newest first.

    Example: digest bounces list --kind policy --issue 2017-W11
    """
    from digest.db import make_engine, session_scope
    from digest.store.bounces import list_bounces
    from digest.store.issues import get_issue

    cfg = settings()
    engine = make_engine(cfg)
    with session_scope(engine) as session:
        issue_id = get_issue(session, newsletter=cfg.newsletter_id, ref=issue).id if issue else None
        rows = [
            {"id": b.id, "received_at": b.received_at, "email": b.email, "kind": str(b.kind),
             "status": b.status, "action": b.action, "issue_id": b.issue_id,
             "diagnostic": b.diagnostic}
            for b in list_bounces(session, kind=kind, issue_id=issue_id, limit=limit)
        ]  # fmt: skip
    engine.dispose()
    if as_json:
        print_json(rows)
        return
    table = Table("when", "recipient", "kind", "status", "action", "diagnostic")
    for r in rows:
        table.add_row(
            f"{r['received_at']:%Y-%m-%d %H:%M}", str(r["email"]), str(r["kind"]),
            str(r["status"] or ""), str(r["action"]), str(r["diagnostic"] or "")[:60],
        )  # fmt: skip
    console.print(table)


@bounces_app.command("stats")
def stats_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Bounces by kind, by recipient domain and per issue.

    Example: digest bounces stats --json
    """
    from digest.db import make_engine, session_scope
    from digest.store.bounces import bounce_stats

    engine = make_engine(settings())
    with session_scope(engine) as session:
        stats = bounce_stats(session)
    engine.dispose()
    if as_json:
        print_json(stats)
        return
    kinds = [k.value for k in BounceKind]
    console.print(
        f"{stats['total']} bounces: " + ", ".join(f"{k} {stats['by_kind'][k]}" for k in kinds),
        highlight=False,
    )
    for title, key in (("by domain", "by_domain"), ("per issue", "by_issue")):
        table = Table(title, *kinds, title=title)
        for name, counts in list(stats[key].items())[:20]:
            table.add_row(name, *(str(counts.get(k, 0)) for k in kinds))
        console.print(table)
