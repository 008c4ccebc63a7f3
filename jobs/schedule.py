"""The one list of jobs: what runs, when, and a line of help.

Jobs only trigger; each task asks the store what is due (see ``jobs/tasks.py``). Every trigger is
built in the newsletter's own zone (``settings.zone``), so "fri 08:00" stays 08:00 local on both
sides of a daylight-saving change.

Start-up catch-up (``CatchUp``) says what happens to a run the scheduler was not there for:

* ``STORE``: run once on start-up, always; the task itself decides from the store whether
  anything is due (an issue whose send time has passed, a week whose build time has passed) and
  applies the send deadline. Ingest, build and send use this, so a machine that was off at
  08:00 sends when it comes back, unless the deadline has passed.
* ``GRACE``: run on start-up only if a run was missed less than ``misfire_grace_minutes`` ago.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from apscheduler.triggers.base import BaseTrigger

from digest.errors import ConfigError
from digest.settings import Settings
from jobs import tasks
from jobs.calendar import build_trigger, describe, every, send_trigger, weekly


class CatchUp(StrEnum):
    STORE = "store"
    GRACE = "grace"


Task = Callable[[tasks.TaskContext], str]


@dataclass(frozen=True)
class Job:
    id: str
    help: str
    task: Task
    trigger: Callable[[Settings], BaseTrigger]
    catch_up: CatchUp


JOBS: tuple[Job, ...] = (
    Job(
        id="ingest",
        help="Fetch every source that is due (its own interval, else INGEST_EVERY_MINUTES).",
        task=tasks.ingest,
        trigger=lambda s: every(s.ingest_every_minutes, settings=s),
        catch_up=CatchUp.STORE,
    ),
    Job(
        id="build",
        help="Build the week's issue; schedule its send (AUTO_SEND) or ask for approval.",
        task=tasks.build,
        trigger=build_trigger,
        catch_up=CatchUp.STORE,
    ),
    Job(
        id="send",
        help="Send the week's issue at SEND_AT; resume an interrupted send; past the deadline:"
        " mark it missed.",
        task=tasks.send,
        trigger=send_trigger,
        catch_up=CatchUp.STORE,
    ),
    Job(
        id="send-scheduled",
        help="Send issues scheduled for other times (issue schedule --at, late approvals).",
        task=tasks.send,
        trigger=lambda s: every(5, settings=s),
        catch_up=CatchUp.GRACE,
    ),
    Job(
        id="bounces",
        help="Poll the bounce mailbox (IMAP_HOST) and suppress what bounced.",
        task=tasks.bounces,
        trigger=lambda s: every(15, settings=s),
        catch_up=CatchUp.GRACE,
    ),
    Job(
        id="expire-pending",
        help="Expire subscriptions left unconfirmed for 30 days.",
        task=tasks.expire_pending,
        trigger=lambda s: weekly("daily 03:00", settings=s, field="expire-pending"),
        catch_up=CatchUp.GRACE,
    ),
    Job(
        id="prune",
        help="Delete raw ingest data older than the retention period.",
        task=tasks.prune,
        trigger=lambda s: weekly("daily 03:30", settings=s, field="prune"),
        catch_up=CatchUp.GRACE,
    ),
)


def job_named(name: str) -> Job:
    """The job with this id; raises ConfigError listing the ids when there is none."""
    for job in JOBS:
        if job.id == name:
            return job
    known = ", ".join(j.id for j in JOBS)
    raise ConfigError(f"no job named {name!r}; jobs are: {known}")


@dataclass(frozen=True)
class NextRun:
    id: str
    trigger: str
    next_run: datetime  # aware, in the newsletter's zone


def next_runs(settings: Settings, *, now: datetime) -> list[NextRun]:
    """When each job fires next after ``now`` (aware), in the newsletter's zone."""
    out = []
    for job in JOBS:
        trigger = job.trigger(settings)
        when = trigger.get_next_fire_time(None, now.astimezone(settings.zone))
        assert when is not None  # our triggers have no end date
        out.append(NextRun(job.id, describe(trigger), when.astimezone(settings.zone)))
    return out
