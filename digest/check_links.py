"""The network half of the pre-send check: the links of one message answer, and its one-click
unsubscribe endpoint answers an RFC 8058 POST. ``transport`` replaces the network in tests.
"""

from __future__ import annotations

import asyncio
import email
import re

import httpx

from digest.check_message import Check, HtmlScan, message_parts

LINK_TIMEOUT = 8.0
LINK_CONCURRENCY = 8


async def network_checks(
    message: bytes,
    *,
    transport: httpx.AsyncBaseTransport | None,
    skip_prefixes: tuple[str, ...] = (),
    skip: set[str] | frozenset[str] = frozenset(),
) -> list[Check]:
    """The checks "links answer" and "one-click unsubscribe answers POST" for ``message``.
    Links that start with one of ``skip_prefixes`` or are in ``skip`` are not fetched."""
    parsed = email.message_from_bytes(message)
    _, page, _ = message_parts(parsed)
    found = {u for u in HtmlScan.read(page).links if u.startswith("https://")}
    links = sorted(u for u in found if u not in skip and not u.startswith(skip_prefixes))
    unsub = re.findall(r"<(https://[^<>]+)>", str(parsed.get("List-Unsubscribe", "")))
    async with httpx.AsyncClient(transport=transport, timeout=LINK_TIMEOUT,
                                 follow_redirects=True) as client:  # fmt: skip
        gate = asyncio.Semaphore(LINK_CONCURRENCY)
        answers = await asyncio.gather(*(_head(client, gate, url) for url in links))
        dead = [f"{url} ({why})" for url, why in zip(links, answers, strict=True) if why]
        checks = [Check("links answer", not dead,
                        f"{len(links) - len(dead)}/{len(links)} answer "
                        f"({len(found) - len(links)} personal or published by the send)" +
                        (f"; failing: {'; '.join(dead[:3])}" if dead else ""))]  # fmt: skip
        if not unsub:
            checks.append(Check("one-click unsubscribe answers POST", False, "no https URI"))
            return checks
        try:
            # No cookies and no redirects, as RFC 8058 receivers send it. The check address
            # belongs to nobody, so the POST changes nothing.
            reply = await client.post(unsub[0], data={"List-Unsubscribe": "One-Click"},
                                      follow_redirects=False)  # fmt: skip
            ok, detail = reply.status_code == 200, f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        checks.append(Check("one-click unsubscribe answers POST", ok, detail))
    return checks


async def _head(client: httpx.AsyncClient, gate: asyncio.Semaphore, url: str) -> str:
    """Empty when ``url`` answers (status < 400), else why not. Some servers refuse HEAD
    (405, 403): those get one GET."""
    async with gate:
        try:
            reply = await client.head(url)
            if reply.status_code in {403, 405, 501}:
                reply = await client.get(url)
        except httpx.HTTPError as exc:
            return type(exc).__name__
    return "" if reply.status_code < 400 else f"HTTP {reply.status_code}"
