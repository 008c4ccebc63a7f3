"""Messages built ahead, in a forked child process, while the send loop talks SMTP.

Building and signing a message is the largest part of a send (about 0.5 ms of CPU, most of it
the RSA signature), and the send loop's event loop and its ledger thread already share one GIL.
A thread of its own would have to share that GIL too: measured here, a signing thread cost more
CPU per message than it saved. So ``Prebuilder.start`` forks a child that walks the rows still
queued, in the order claims take them, builds each one's message with the same template and
recipient code as the send loop, and streams the bytes back through a pipe. The parent reads
them into a small stock, and stops reading when the stock is full, so the child never runs far
ahead (it blocks on the full pipe).

The child only reads the ledger. Claiming, the consent re-check and every state change stay with
the send loop's rounds, so the ledger's guarantees do not depend on the child: ``Prebuilder.take``
returns a message only for exactly the recipient the claim computed (address, name, links, VERP
token), built less than ``max_age`` seconds ago (its Date header is the build time); anything
else, and any trouble with the child, means the worker builds the message itself.

Linux only (``os.fork``); elsewhere, and for small sends, every message is built on the spot.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pickle
import signal
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy.engine import Engine

from digest.db import session_scope
from digest.send.claims import recipient_for
from digest.send.message import MessageTemplate, Recipient, WireBytes, new_message_id
from digest.settings import Settings
from digest.store import deliveries as ledger

_FRAME = struct.Struct(">II")  # header length, message length
_BATCH = 16  # rows the child reads per query
_READ = 2 << 20  # the parent's read buffer (a message is about 70 KB)


@dataclass(frozen=True, slots=True)
class Work:
    """What the child builds: ``issue_id``'s queued rows with ``template``, dated by ``clock``,
    leaving the first ``skip`` rows to the send loop's first claim (``secret``: as for
    ``claims.recipient_for``)."""

    engine: Engine
    template: MessageTemplate
    settings: Settings
    issue_id: int
    secret: bytes
    skip: int
    clock: Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Built:
    recipient: Recipient
    message_id: str
    data: WireBytes
    built_at: float  # time.time() when it was built (its Date header)


def available() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork")


class Prebuilder:
    """The parent's side: the child's pid, the pipe it writes to, and the stock read from it."""

    def __init__(self, *, stock: int, max_age: float = 60.0) -> None:
        self.capacity = stock
        self.max_age = max_age
        self._stock: dict[int, Built] = {}
        self._buffer = bytearray(_READ)
        self._filled = 0  # bytes of ``_buffer`` read and not yet parsed
        self._fd: int | None = None
        self._pid: int | None = None
        self._reading = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.used = 0  # messages sent as built ahead (tests and the benchmark read these)
        self.received = 0
        self.trouble: str | None = None  # why the child stopped early, if it did
        self.ended = False  # the child closed its end: it finished or died

    def start(self, work: Work) -> None:
        """Fork the child that does ``work``."""
        self._loop = asyncio.get_running_loop()
        try:
            read_fd, write_fd = os.pipe()
        except OSError as exc:
            self.trouble = f"no pipe for it ({exc})"
            return
        with contextlib.suppress(OSError):  # room for a few messages at once (Linux: 1 MiB)
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        try:
            pid = os.fork()
        except OSError as exc:  # out of processes or memory: the send loop builds everything
            os.close(read_fd)
            os.close(write_fd)
            self.trouble = f"it could not start ({exc})"
            return
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            _child(write_fd, work)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self._fd, self._pid = read_fd, pid
        self._resume()

    def take(self, delivery_id: int, recipient: Recipient) -> Built | None:
        """The message built ahead for this claim, if it is for exactly ``recipient`` and
        fresh; None means: build it now."""
        built = self._stock.pop(delivery_id, None)
        if self._stock:
            # Rows well behind this claim will not be asked for (another process or the
            # consent re-check took them): they only fill the stock.
            behind = delivery_id - 4 * self.capacity
            for stale in [k for k in self._stock if k < behind]:
                del self._stock[stale]
        if len(self._stock) < self.capacity:
            self._resume()
        if built is None or built.recipient != recipient:
            return None
        if time.time() - built.built_at > self.max_age:
            return None
        self.used += 1
        return built

    def _resume(self) -> None:
        if not self._reading and self._fd is not None and self._loop is not None:
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True

    def _pause(self) -> None:
        if self._reading and self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _readable(self) -> None:
        # Read straight into one long-lived buffer: a fresh 1 MiB bytes per read, and appending
        # it to a bytearray, cost more than everything else the parent does with a message.
        assert self._fd is not None
        buffer = self._buffer
        if self._filled == len(buffer):  # a frame larger than the buffer: make room for it
            buffer.extend(bytes(max(len(buffer), _READ)))
        try:
            with memoryview(buffer) as view:
                got = os.readv(self._fd, [view[self._filled :]])
        except BlockingIOError:
            return
        except OSError as exc:
            self.trouble = f"reading from it failed ({exc})"
            got = 0
        if not got:  # the child finished (or died): what it built stays usable
            self._pause()
            os.close(self._fd)
            self._fd = None
            self.ended = True
            return
        self._filled += got
        filled, offset = self._filled, 0
        with memoryview(buffer) as view:
            while filled - offset >= _FRAME.size:
                head_len, data_len = _FRAME.unpack_from(buffer, offset)
                start = offset + _FRAME.size
                end = start + head_len + data_len
                if filled < end:
                    break
                delivery_id, recipient, message_id, built_at = pickle.loads(
                    view[start : start + head_len]
                )
                data = WireBytes(view[start + head_len : end])
                self._stock[delivery_id] = Built(recipient, message_id, data, built_at)
                self.received += 1
                offset = end
            if offset:  # keep the start of the next frame at the buffer's start
                view[: filled - offset] = view[offset:filled]
        self._filled = filled - offset
        if len(self._stock) >= self.capacity:
            self._pause()

    def close(self) -> None:
        """Stop the child (if it still runs) and reap it."""
        self._pause()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            if not self.ended:  # still building: nothing it does now is wanted
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
            code = os.waitstatus_to_exitcode(status)
            if code not in (0, -signal.SIGKILL) and self.trouble is None:
                self.trouble = f"it exited with status {code}"
        self._stock.clear()


def _child(fd: int, work: Work) -> NoReturn:
    """Build every queued row's message, in claim order, into ``fd``; then exit."""
    code = 0
    try:
        # The parent's signals are the parent's: Ctrl-C and the stop request reach it, and it
        # ends this process. The event loop's wakeup pipe is the parent's too.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # the parent went away: so do we
        work.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
        _build_all(fd, work)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _build_all(fd: int, work: Work) -> None:
    settings, skip = work.settings, work.skip
    after, expected = 0, None
    while True:
        with session_scope(work.engine) as session:
            rows = ledger.upcoming(
                session, issue_id=work.issue_id, after=after, limit=_BATCH + skip
            )
        if not rows:
            return
        if rows[0][0].delivery_id != expected:
            # The send loop is claiming these first rows right now (at the start, or because it
            # overtook us): building them would only race it.
            rows = rows[skip:] or rows
        for row, name in rows:
            recipient = recipient_for(row, name, settings=settings, secret=work.secret)
            message_id = new_message_id(settings=settings)
            try:
                data = work.template.render(recipient, date=work.clock(), message_id=message_id)
            except Exception:  # noqa: BLE001 - the send loop meets (and records) the same error
                continue
            head = pickle.dumps((row.delivery_id, recipient, message_id, time.time()), protocol=5)
            _write_all(fd, _FRAME.pack(len(head), len(data)) + head + data)
        after = rows[-1][0].delivery_id
        expected = after + 1  # ids of one issue's rows are consecutive: they are added at once


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
