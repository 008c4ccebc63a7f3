"""A local SMTP sink: a real aiosmtpd server on 127.0.0.1 that writes every message it
receives to a folder as an ``.eml`` file. The demo sends into it; ``digest sink`` runs one."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _WriteToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self._lock = threading.Lock()
        self._seq = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content
        with self._lock:
            n = next(self._seq)
            self.count += 1
        stamp = time.strftime("%Y%m%dT%H%M%S")
        rcpt = envelope.rcpt_tos[0].replace("@", "_at_").replace("/", "_")
        path = self.folder / f"{stamp}-{n:06d}-{rcpt}.eml"
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # a reader never sees half a message
        return "250 OK: stored"


class FolderSink:
    """Start with ``start()``, stop with ``stop()``; ``received`` counts messages."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.handler = _WriteToFolder(folder)
        self.host = host
        self.port = port or _free_port(host)
        self._controller = Controller(self.handler, hostname=host, port=self.port)

    @property
    def received(self) -> int:
        return self.handler.count

    def start(self) -> FolderSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> FolderSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
