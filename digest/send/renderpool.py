"""Building and signing messages in worker processes, a batch per ledger round.

Splicing a recipient's values into the issue's template and signing the result costs about
0.45 ms of CPU per message, most of it the RSA signature, and in the sending process that work
holds the interpreter lock the SMTP connections and the ledger rounds need. A large send
therefore builds its messages in worker processes: each builds the issue's ``MessageTemplate``
once, and every round's claimed rows go to a worker as one batch while the event loop only
talks SMTP. The bytes are the same as ``MessageTemplate.render`` gives in-process.

Small sends build in-process (``renderer_for`` returns None): starting workers costs more than
it saves. A value that cannot be sent (a line break in a name) comes back as its error text, and
the send loop records that recipient as failed, as it does in-process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from digest.errors import InputError
from digest.send.message import MessageTemplate, Recipient
from digest.settings import Settings

PROCESSES_FROM = 300  # due messages from which a send builds them in worker processes
MAX_AUTO_PROCESSES = 4
PARENT_CHECK_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class RenderRequest:
    recipient: Recipient
    date: datetime
    message_id: str


Rendered = bytes | str  # the message, or why it cannot be built (an InputError's text)


@dataclass(frozen=True, slots=True)
class IssueParts:
    """What a worker needs to build the issue's template (plain values: they cross processes)."""

    subject: str
    html: str
    text: str
    campaign: str


class ProcessRenderer:
    """A pool of worker processes, each holding the issue's template."""

    def __init__(self, *, settings: Settings, parts: IssueParts, processes: int) -> None:
        # spawn, not fork: the sending process has threads (ledger rounds, the event loop's).
        self._pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(settings, parts),
        )

    def submit(self, batch: list[RenderRequest]) -> Future[list[Rendered]]:
        return self._pool.submit(_render_batch, batch)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def processes_for(settings: Settings, *, due: int) -> int:
    """How many worker processes a send of ``due`` messages uses (0: build in-process)."""
    if due < PROCESSES_FROM:
        return 0
    if settings.render_processes >= 0:
        return settings.render_processes
    return min(MAX_AUTO_PROCESSES, max(0, (os.cpu_count() or 1) - 1))


def renderer_for(settings: Settings, *, parts: IssueParts, due: int) -> ProcessRenderer | None:
    processes = processes_for(settings, due=due)
    if processes == 0:
        return None
    return ProcessRenderer(settings=settings, parts=parts, processes=processes)


# --- in the worker ------------------------------------------------------------------------------

_template: MessageTemplate | None = None


def _start_worker(settings: Settings, parts: IssueParts) -> None:
    from digest.send.dkim import DkimSigner

    # A sending process killed outright (SIGKILL, a crash) cannot shut its pool down, and a
    # worker waiting for its next batch would never learn it: it leaves when its parent does.
    parent = os.getppid()
    threading.Thread(target=_leave_with, args=(parent,), name="parent-watch", daemon=True).start()
    global _template
    _template = MessageTemplate.build(
        subject=parts.subject,
        html=parts.html,
        text=parts.text,
        settings=settings,
        campaign=parts.campaign,
        signer=DkimSigner.from_settings(settings),
    )


def _leave_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _render_batch(batch: list[RenderRequest]) -> list[Rendered]:
    template = _template
    assert template is not None, "the worker's initializer builds the template"
    out: list[Rendered] = []
    for r in batch:
        try:
            out.append(template.render(r.recipient, date=r.date, message_id=r.message_id))
        except InputError as exc:
            out.append(str(exc))
    return out
