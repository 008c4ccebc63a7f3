"""A real HTTP server on 127.0.0.1 for fetch and ingest tests.

Routes map a path to a ``Route`` (body, headers, status, delay). The server honours
``If-None-Match``/``If-Modified-Since`` like a static file server and records every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    chunks: int = 1  # > 1: stream the body in pieces without a Content-Length


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int


@dataclass
class LocalServer:
    port: int
    routes: dict[str, Route]
    requests: list[Seen] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return  # keep test output quiet

        def do_GET(self) -> None:  # noqa: N802
            route = server.routes.get(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if route is None:
                self._send(404, b"not found", "text/plain", Route())
                server.requests.append(Seen(self.path, headers, 404))
                return
            if route.delay:
                time.sleep(route.delay)
            fresh = (route.etag and headers.get("if-none-match") == route.etag) or (
                route.last_modified and headers.get("if-modified-since") == route.last_modified
            )
            status = 304 if fresh else route.status
            server.requests.append(Seen(self.path, headers, status))
            self._send(status, b"" if fresh else route.body, route.content_type, route)

        def _send(self, status: int, body: bytes, content_type: str, route: Route) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            if route.chunks > 1 and status == 200:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                size = max(1, len(body) // route.chunks)
                try:
                    for start in range(0, len(body), size):
                        piece = body[start : start + size]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (size cap): expected
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (timeout, size cap) resets the connection: expected here, and
        # the default handler would print a traceback into the output under test.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[LocalServer]:
    """Run a threaded HTTP server on a free 127.0.0.1 port for the duration of the block."""
    state = LocalServer(port=0, routes=routes)
    httpd = _QuietServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
