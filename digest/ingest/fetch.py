"""Fetching feeds and pages over HTTP: timeouts, a size cap, conditional GET, one-line errors.

``Fetcher`` wraps an ``httpx.Client`` whose transport can be injected: the real network in
production, ``httpx.MockTransport`` (the in-memory twin) in unit tests. Every failure a person
can fix or wait out becomes a ``SourceError`` naming the URL and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from importlib import metadata
from types import TracebackType

import httpx

from digest.errors import SourceError
from digest.settings import Settings

MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response. ``not_modified`` means the server answered 304: ``content`` is empty and the
    caller's stored copy is still current."""

    url: str
    status: int
    content: bytes
    content_type: str | None = None
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def user_agent(settings: Settings) -> str:
    """``digest/<version> (+<base_url>)``: who is fetching, and where to find out more."""
    try:
        version = metadata.version("digest")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        version = "0"
    return f"digest/{version} (+{settings.base_url})"


class Fetcher:
    """GET with limits. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        max_bytes: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> Fetcher:
        return cls(
            user_agent=user_agent(settings),
            timeout=settings.fetch_timeout,
            max_bytes=settings.max_page_bytes,
            transport=transport,
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
    ) -> Fetched:
        """Fetch ``url``. With ``etag``/``last_modified`` from the previous fetch the request is
        conditional and an unchanged resource comes back as ``not_modified``.

        Raises SourceError (one line: the URL and why) on a timeout, a connection failure, an
        HTTP error status, too many redirects, or a body larger than ``max_bytes``.
        """
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                return self._read(url, response)
        except httpx.TimeoutException:
            raise SourceError(f"{url}: timed out after {self.timeout:g} s") from None
        except httpx.TooManyRedirects:
            raise SourceError(f"{url}: more than {MAX_REDIRECTS} redirects") from None
        except httpx.UnsupportedProtocol:
            raise SourceError(f"{url}: not an http(s) URL") from None
        except httpx.InvalidURL as exc:
            raise SourceError(f"{url}: invalid URL ({exc})") from None
        except httpx.HTTPError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SourceError(f"{url}: could not fetch ({reason})") from None

    def _read(self, url: str, response: httpx.Response) -> Fetched:
        if response.status_code == 304:
            return Fetched(
                url=str(response.url),
                status=304,
                content=b"",
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
        if response.status_code >= 400:
            phrase = response.reason_phrase or ""
            raise SourceError(f"{url}: HTTP {response.status_code} {phrase}".rstrip())
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(url)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                # Stop reading: a runaway or hostile response must not fill memory.
                raise self._too_large(url)
            chunks.append(chunk)
        content_type, charset = _content_type(response.headers.get("content-type"))
        return Fetched(
            url=str(response.url),
            status=response.status_code,
            content=b"".join(chunks),
            content_type=content_type,
            charset=charset,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )

    def _too_large(self, url: str) -> SourceError:
        return SourceError(
            f"{url}: too large, over {self.max_bytes / 1e6:.1f} MB (DIGEST_MAX_PAGE_BYTES)"
        )


def _content_type(header: str | None) -> tuple[str | None, str | None]:
    if not header:
        return None, None
    message = Message()
    message["content-type"] = header
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None
