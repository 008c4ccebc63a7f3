"""Where bounce mail comes from: a file, a folder of ``.eml``, a Maildir, an mbox, stdin, IMAP.

Every source yields :class:`Incoming` messages. Only IMAP has an acknowledgement: a message is
moved to the "processed" folder after it was handled, never deleted, so nothing is lost when
processing fails half-way (the next poll sees it again; processing is idempotent).
"""

from __future__ import annotations

import mailbox
import re
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from digest.errors import ConfigError, InputError, SourceError
from digest.settings import Settings

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One raw message and the name it is reported under (file name or Message-ID)."""

    source: str
    raw: bytes
    uid: str | None = None  # the IMAP UID, for moving it once handled


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID of a raw message's own header block, or None."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = _MESSAGE_ID.search(head)
    return found.group(1).decode("ascii", "replace") if found else None


def read_path(path: str) -> Iterator[Incoming]:
    """Messages from ``path``: ``-`` (stdin), one message file, an mbox file, a Maildir or a
    folder of ``.eml`` files (in name order). Raises InputError when ``path`` is none of these."""
    if path == "-":
        raw = sys.stdin.buffer.read()
        yield Incoming(source=message_id_of(raw) or "stdin", raw=raw)
        return
    target = Path(path)
    if target.is_dir():
        if all((target / sub).is_dir() for sub in ("cur", "new", "tmp")):
            yield from _maildir(target)
            return
        files = sorted(p for p in target.iterdir() if p.is_file() and p.suffix.lower() == ".eml")
        if not files:
            raise InputError(f"{path}: no .eml files here, and it is not a Maildir (cur/new/tmp)")
        for file in files:
            yield Incoming(source=file.name, raw=file.read_bytes())
        return
    if not target.is_file():
        raise InputError(f"{path}: no such file or folder (give a .eml, mbox, Maildir or -)")
    with target.open("rb") as fh:
        start = fh.read(5)
    if start == b"From ":
        yield from _mbox(target)
        return
    yield Incoming(source=target.name, raw=target.read_bytes())


def _mbox(path: Path) -> Iterator[Incoming]:
    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.keys(), start=1):
            raw = box.get_bytes(key)
            yield Incoming(source=message_id_of(raw) or f"{path.name}#{index}", raw=raw)
    finally:
        box.close()


def _maildir(path: Path) -> Iterator[Incoming]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.keys()):
        raw = box.get_bytes(key)
        yield Incoming(source=message_id_of(raw) or key, raw=raw)


# --- IMAP ---------------------------------------------------------------------------------


class Mailbox(Protocol):
    """The little of an IMAP mailbox that bounce polling needs."""

    def fetch_all(self, *, limit: int) -> list[Incoming]: ...

    def move_done(self, uids: list[str]) -> None: ...


class ImapMailbox(AbstractContextManager["ImapMailbox"]):
    """The real mailbox: imap-tools over TLS (port 993, or STARTTLS on 143)."""

    def __init__(self, settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context`` defaults to the system's trusted CAs with host name checking."""
        if not settings.imap_host:
            raise ConfigError("no bounce mailbox configured: set DIGEST_IMAP_HOST (and user)")
        self._settings = settings
        self._context = ssl_context or ssl.create_default_context()
        self._box: Any = None

    def __enter__(self) -> ImapMailbox:
        from imap_tools import MailBox, MailBoxStartTls

        cfg = self._settings
        context = self._context
        box: Any
        try:
            if cfg.imap_tls == "starttls":
                box = MailBoxStartTls(cfg.imap_host, port=cfg.imap_port, ssl_context=context)
            else:
                box = MailBox(cfg.imap_host, port=cfg.imap_port, ssl_context=context)
            box.login(cfg.imap_user, cfg.imap_password.get_secret_value(), cfg.imap_folder)
            if not box.folder.exists(cfg.imap_done_folder):
                box.folder.create(cfg.imap_done_folder)
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(f"bounce mailbox {cfg.imap_host}:{cfg.imap_port}: {exc}") from exc
        except Exception as exc:  # imap-tools raises its own errors for login and folders
            raise SourceError(f"bounce mailbox {cfg.imap_host}: {exc}") from exc
        self._box = box
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._box is not None:
            self._box.logout()

    def fetch_all(self, *, limit: int) -> list[Incoming]:
        found = []
        # mark_seen=False: a message we fail to handle stays as it was for the next poll.
        for msg in self._box.fetch(limit=limit, mark_seen=False, bulk=True):
            raw = msg.obj.as_bytes()
            found.append(Incoming(source=message_id_of(raw) or f"imap:{msg.uid}", raw=raw,
                                  uid=msg.uid))  # fmt: skip
        return found

    def move_done(self, uids: list[str]) -> None:
        if uids:
            self._box.move(uids, self._settings.imap_done_folder)


@dataclass
class MemoryMailbox:
    """The in-memory twin for tests: ``done`` holds what was moved to the processed folder."""

    inbox: list[Incoming] = field(default_factory=list)
    done: list[Incoming] = field(default_factory=list)

    def fetch_all(self, *, limit: int) -> list[Incoming]:
        return self.inbox[:limit]

    def move_done(self, uids: list[str]) -> None:
        moved = [m for m in self.inbox if m.uid in set(uids)]
        self.inbox = [m for m in self.inbox if m.uid not in set(uids)]
        self.done.extend(moved)


def drain(
    box: Mailbox, handle: Callable[[Incoming], object], *, limit: int = 500, dry_run: bool
) -> int:
    """Handle every message in ``box`` and move each handled one to the processed folder
    (nothing moves on a dry run). Returns how many were handled."""
    messages = box.fetch_all(limit=limit)
    handled: list[str] = []
    for message in messages:
        handle(message)
        if message.uid is not None:
            handled.append(message.uid)
    if not dry_run:
        box.move_done(handled)
    return len(messages)
