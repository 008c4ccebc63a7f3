"""`digest issue send|status|retry-failed`: the delivery ledger from the command line."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from digest.cli import issue_app
from digest.cli.common import console, now, print_json, settings

ISSUE_ARG = typer.Argument(None, help="Issue id or week (default: the latest).")


class _Bar:
    """The engine's progress callbacks drawn as a Rich bar with rate and ETA."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._started = time.monotonic()
        self._done = 0

    def start(self, total: int) -> None:
        self._task = self._progress.add_task("sending", total=total, rate="")

    def advance(self, outcome: str) -> None:
        if self._task is None:
            return
        self._done += 1
        elapsed = max(1e-6, time.monotonic() - self._started)
        self._progress.update(self._task, advance=1, rate=f"{self._done / elapsed:,.0f}/s")


def _counts_table(counts: dict[str, int], *, title: str) -> Table:
    table = Table("state", "rows", title=title)
    for state, value in counts.items():
        table.add_row(state, f"{value:,}")
    return table


@issue_app.command("send")
def send(
    issue: str = ISSUE_ARG,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List who would receive it and who is skipped and why."
    ),
    test_to: str = typer.Option(
        None, "--test-to", help="Send one copy to ADDRESS; the ledger is not touched."
    ),
    resend_uncertain: bool = typer.Option(
        False, "--resend-uncertain", help="Also resend rows a crash left uncertain."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Send the issue to every confirmed subscriber who has not had it yet (resumable).

    Uses DIGEST_SMTP_HOST/PORT/TLS/USER/PASSWORD and signs with the DKIM key (see `digest dkim
    keygen`). Re-running continues where a crash or a pause stopped; rows that were being sent
    during a crash are reported as uncertain and resent only with --resend-uncertain.

    Examples: digest issue send --dry-run;  digest issue send --test-to me@example.org;
    DIGEST_SMTP_HOST=127.0.0.1 DIGEST_SMTP_PORT=8025 digest issue send 2017-W11
    """
    cfg = settings()
    if test_to:
        from digest.send.commands import send_test_copy

        message_id = send_test_copy(settings=cfg, ref=issue, address=test_to, now=now())
        console.print(
            f"test copy sent to {test_to} ({message_id}); ledger untouched", highlight=False
        )
        return
    if dry_run:
        _dry_run(issue, as_json=as_json)
        return
    from digest.send.commands import run_send
    from digest.send.engine import SendPolicy

    policy = SendPolicy(resend_uncertain=resend_uncertain)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=quiet or as_json, transient=False) as bar:
        report = run_send(settings=cfg, now=now(), ref=issue, policy=policy, progress=_Bar(bar))
    if as_json:
        print_json(_report_json(report))
    else:
        console.print(_counts_table(report.counts, title=f"issue {report.issue_week}"))
        console.print(report.summary(), highlight=False, markup=False)
        for email, why in report.failed[:20]:
            console.print(f"  failed: {email}: {why}", highlight=False, markup=False)
    if report.paused:
        from digest.errors import RelayUnavailable

        raise RelayUnavailable(f"send paused: {report.paused}")


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "issue": report.issue_week,
        "enqueued": report.enqueued,
        "sent": report.sent,
        "skipped": [{"email": e, "reason": r} for e, r in report.skipped],
        "failed": [{"email": e, "error": r} for e, r in report.failed],
        "retrying": report.retrying,
        "uncertain": report.uncertain,
        "paused": report.paused,
        "counts": report.counts,
    }


def _dry_run(issue: str | None, *, as_json: bool) -> None:
    from digest.send.commands import plan_send

    week, rows = plan_send(settings=settings(), ref=issue)
    sending = [r for r in rows if r.send]
    skipped = [r for r in rows if not r.send]
    if as_json:
        print_json(
            {
                "issue": week,
                "would_send": [r.email for r in sending],
                "skipped": [{"email": r.email, "reason": r.reason} for r in skipped],
            }
        )
        return
    console.print(
        f"issue {week}: would send {len(sending):,}, skip {len(skipped):,} (dry run: "
        "nothing was sent or written)",
        highlight=False,
    )
    table = Table("email", "action", "why")
    for r in (skipped + sending)[:200]:
        table.add_row(r.email, "send" if r.send else "skip", r.reason)
    console.print(table)
    if len(rows) > 200:
        console.print(f"… and {len(rows) - 200:,} more (use --json for all)")


@issue_app.command("status")
def status(
    issue: str = ISSUE_ARG,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show how many deliveries are in each state, and the sending rate.

    Example: digest issue status 2017-W11 --json
    """
    from digest.send.commands import ledger_status

    data = ledger_status(settings=settings(), ref=issue, now=now())
    if as_json:
        print_json(data)
        return
    console.print(_counts_table(data["counts"], title=f"issue {data['issue']} ({data['status']})"))
    console.print(
        f"rate: {data['sent_last_minute']:,} sent in the last minute; "
        f"{data['per_second']:.1f}/s on average",
        highlight=False,
    )
    if data["problems"]:
        table = Table("email", "state", "code", "last error", title="failed and uncertain")
        for p in data["problems"]:
            table.add_row(p["email"], p["status"], str(p["code"] or ""), p["error"] or "")
        console.print(table)


@issue_app.command("retry-failed")
def retry_failed(
    issue: str = ISSUE_ARG,
    include_permanent: bool = typer.Option(
        False, "--include-permanent", help="Also retry 5xx failures (after fixing their cause)."
    ),
) -> None:
    """Queue temporarily failed deliveries again, attempts reset; `digest issue send` sends them.

    Example: digest issue retry-failed 2017-W11 && digest issue send 2017-W11
    """
    from digest.send.commands import requeue_failed

    week, count = requeue_failed(
        settings=settings(), ref=issue, include_permanent=include_permanent
    )
    console.print(
        f"issue {week}: {count:,} deliveries queued again; run: digest issue send {week}",
        highlight=False,
    )
