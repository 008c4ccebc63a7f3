"""SIGTERM and SIGINT as a stop request, with no Python code run inside the signal handler.

A Python-level signal handler runs in the main thread between two bytecodes, wherever that
thread happens to be: also inside ``threading.Event.wait`` while it holds the event's own lock,
which is not reentrant. A handler that calls ``Event.set()`` on that event there waits for the
lock forever, so the process ignores the signal and never exits. Here the Python-level handler
does nothing; the interpreter's C-level handler writes the signal's number to a pipe
(``signal.set_wakeup_fd``) and a small thread reads it and makes the stop request outside any
signal context. That also works while the main thread is busy in C code (a SQLite busy wait):
the pipe is written at once, on whichever thread the signal lands.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(on_stop: Callable[[signal.Signals], None]) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGINT call ``on_stop(signal)`` on a watcher thread.

    Must be entered in the main thread (the only one that may set signal handlers); the
    previous handlers are put back on exit. Raises ValueError from any other thread.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # set_wakeup_fd insists: a full pipe must not block
    watcher = threading.Thread(target=_watch, args=(read_fd, on_stop), name="signals", daemon=True)
    try:
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    previous = {sig: signal.signal(sig, _do_nothing_here) for sig in STOP_SIGNALS}
    watcher.start()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # the watcher reads end-of-file and returns
        watcher.join()
        os.close(read_fd)


def _do_nothing_here(_signum: int, _frame: FrameType | None) -> None:
    # Installing a Python handler is what makes the interpreter catch the signal (and write it
    # to the wakeup pipe); the work happens on the watcher thread, see the module docstring.
    return None


def _watch(read_fd: int, on_stop: Callable[[signal.Signals], None]) -> None:
    while data := os.read(read_fd, 64):
        for number in data:
            if number in STOP_SIGNALS:
                on_stop(signal.Signals(number))
