"""`digest issue send|status|retry-failed`: the delivery ledger from the command line."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
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
        self._started = 0.0  # set by start
        self._done = 0

    def start(self, total: int) -> None:
        # Drawn from here on: a send refused before it starts leaves no empty bar behind, and
        # the rate does not count the pre-send check.
        self._progress.start()
        self._started = time.monotonic()
        self._task = self._progress.add_task("sending", total=total, rate="")

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()

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
    force: bool = typer.Option(
        False, "--force", help="Send even when the pre-send check fails (its failures are shown)."
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Pre-send check without the network (links, one-click POST)."
    ),
) -> None:
    """Send the issue to every confirmed subscriber who has not had it yet (resumable).

    First runs `digest issue check` on one personalised copy and refuses to send when it fails
    (--force sends anyway; --offline skips its network checks). Uses the SMTP settings
    (DIGEST_SMTP_HOST, PORT, TLS, USER, PASSWORD) and signs with the DKIM key (see
    `digest dkim keygen`). Re-running continues where a crash, a pause or a stop left off; rows
    that were being sent during a crash are reported as uncertain and resent only with
    --resend-uncertain. SIGTERM or Ctrl-C stops cleanly (messages in flight finish, the rest
    stays queued, exit 0); a second one aborts.

    Example: digest issue send --dry-run

    Example: digest issue send --test-to me@example.org

    Example: DIGEST_SMTP_HOST=127.0.0.1 DIGEST_SMTP_PORT=8025 digest issue send 2017-W11
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
    from digest.send.commands import PreSendCheck, run_send
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
    check = PreSendCheck(offline=offline, force=force)
    stop = threading.Event()
    bar = _Bar(Progress(*columns, console=console, disable=quiet or as_json, transient=False))
    with _stop_on_signals(stop):
        try:
            report = run_send(
                settings=cfg, now=now(), ref=issue, policy=policy, progress=bar, check=check,
                stop=stop,
            )  # fmt: skip
        finally:
            bar.close()
    if as_json:
        print_json(_report_json(report))
    else:
        for problem in report.check_warnings:
            console.print(f"  pre-send check failed, sent anyway (--force): {problem}",
                          highlight=False, markup=False)  # fmt: skip
        console.print(_counts_table(report.counts, title=f"issue {report.issue_week}"))
        # A pause ends in the one error line below, which says why: not twice.
        console.print(report.summary(pause=False), highlight=False, markup=False)
        for email, why in report.failed[:20]:
            console.print(f"  failed: {email}: {why}", highlight=False, markup=False)
    if report.paused_by_policy:
        from digest.errors import SendError

        raise SendError(
            f"send paused: {report.paused}; resume with digest issue send once fixed (the "
            "refused rows: digest issue retry-failed --include-permanent)",
            permanent=False,
        )
    if report.paused:
        from digest.errors import RelayUnavailable

        raise RelayUnavailable(
            f"send paused: {report.paused}; then run `digest issue send` again to resume"
        )
    # A stop on request (SIGTERM, Ctrl-C) is a clean end: exit 0, the rest stays queued.


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While sending, the first SIGTERM/SIGINT sets ``stop``; a second one ends the process at
    once by that signal (rows in flight are then reported uncertain by the next run)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    # Setting an Event from a handler deadlocks only when the main thread was interrupted while
    # holding that event's lock (jobs/signals.py explains it). Here the main thread runs the
    # event loop and only ever reads ``stop`` (``is_set`` takes no lock); this handler is the
    # one writer. It stays a plain handler because a second signal must end the process by
    # that signal, and only the main thread may put the default disposition back.
    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stop.set()
        # os.write, not the console: printing from a signal handler could interleave or block.
        os.write(2, b"\nstopping: finishing the messages in flight (signal again to abort)\n")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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
        "stopped": report.stopped,
        "check_warnings": report.check_warnings,
        "built_ahead": report.built_ahead,
        "built_ahead_trouble": report.built_ahead_trouble,
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
