"""`digest scheduler run`, `digest jobs list|run`: the schedule from the command line."""

from __future__ import annotations

import logging
from datetime import UTC

import typer
from rich.table import Table

from digest.cli import app
from digest.cli.common import console, now, print_json, settings

scheduler_app = typer.Typer(
    help="Run the schedule (ingest, build, send, bounces).", no_args_is_help=True
)
jobs_app = typer.Typer(help="List the scheduled jobs or run one now.", no_args_is_help=True)
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(jobs_app, name="jobs")


@scheduler_app.command("run")
def run(
    poll: float = typer.Option(5.0, "--poll", help="Seconds between lease checks on standby."),
    lease: float = typer.Option(
        30.0, "--lease", help="SQLite: seconds before a dead leader's lease may be taken over."
    ),
) -> None:
    """Run the schedule in the foreground, logging each run. A second one against the same
    database waits as a standby; SIGTERM finishes the running job and exits.

    Example: DIGEST_TIMEZONE=Europe/London digest scheduler run
    """
    from jobs.scheduler import run_scheduler

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # APScheduler logs every submission at INFO; our own listener logs each run's outcome.
    for noisy in ("apscheduler", "alembic"):  # their INFO lines are not the operator's news
        logging.getLogger(noisy).setLevel(logging.WARNING)
    raise typer.Exit(run_scheduler(settings(), poll=poll, lease=lease))


@jobs_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Each job, its trigger and its next run, in the newsletter's zone and in UTC.

    Example: digest jobs list --json
    """
    from jobs.schedule import JOBS, next_runs

    cfg = settings()
    runs = next_runs(cfg, now=now())
    if as_json:
        print_json(
            [{"id": r.id, "trigger": r.trigger, "next_run": r.next_run.isoformat()} for r in runs]
        )
        return
    table = Table("job", "when (local)", f"next run ({cfg.timezone})", "next run (UTC)")
    for r in runs:
        table.add_row(
            r.id, r.trigger, f"{r.next_run:%a %d %b %Y %H:%M %Z}",
            f"{r.next_run.astimezone(UTC):%a %d %b %H:%M}",
        )  # fmt: skip
    console.print(table)
    for job in JOBS:
        console.print(f"  {job.id}: {job.help}", highlight=False, markup=False)


@jobs_app.command("run")
def run_one(name: str = typer.Argument(..., help="Job id, as `digest jobs list` shows.")) -> None:
    """Run one job once, now, in this process (the store still decides what is due).

    Example: digest jobs run send
    """
    from digest.db import make_engine
    from jobs.notify import MailNotifier
    from jobs.schedule import job_named
    from jobs.tasks import TaskContext

    cfg = settings()
    job = job_named(name)
    engine = make_engine(cfg)
    try:
        ctx = TaskContext(settings=cfg, engine=engine, notifier=MailNotifier(cfg))
        console.print(f"{job.id}: {job.task(ctx)}", highlight=False, markup=False)
    finally:
        engine.dispose()
