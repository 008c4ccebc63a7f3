"""The pre-send check: one personalised message of an issue, built exactly as the send builds it,
checked the way receivers and RFCs look at it.

``check_issue`` returns a :class:`CheckReport`; ``issue send`` refuses to send when it fails
(unless forced). The checks live by what they need: ``check_message`` (the bytes alone),
``check_links`` (the network: links answer a HEAD, the one-click endpoint answers a POST; skipped
with ``offline=True``) and ``check_dns`` (the DKIM key; also the DNS records to publish).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from digest.check_dns import DnsRecord as DnsRecord  # re-exported: the older import path
from digest.check_dns import dns_records as dns_records  # re-exported: the older import path
from digest.check_links import network_checks
from digest.check_message import Check as Check  # re-exported: the older import path
from digest.check_message import check_message
from digest.models import Issue, Subscriber
from digest.settings import Settings

CHECK_ADDRESS_ID = 0  # a subscriber id no row has: the one-click POST changes nothing


@dataclass
class CheckReport:
    checks: list[Check] = field(default_factory=list)
    message: bytes = b""

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


# --- building the message ---------------------------------------------------------------------


def build_check_message(*, settings: Settings, issue: Issue, now: datetime) -> bytes:
    """The final bytes of one personalised copy, as the send engine builds and signs them."""
    from digest.send.dkim import DkimSigner
    from digest.send.message import MessageTemplate, Recipient, new_message_id
    from digest.subscribers.links import preferences_url, unsubscribe_url

    person = Subscriber(id=CHECK_ADDRESS_ID, email=f"issue-check@{settings.sender_domain}",
                        name="Reader")  # fmt: skip
    template = MessageTemplate.build(subject=issue.subject, html=issue.html, text=issue.text,
                                     settings=settings, campaign=issue.week,
                                     signer=DkimSigner.from_settings(settings))  # fmt: skip
    recipient = Recipient(
        email=person.email,
        name=person.name,
        unsubscribe_url=unsubscribe_url(settings=settings, subscriber=person),
        preferences_url=preferences_url(settings=settings, subscriber=person),
    )
    return template.render(recipient, date=now, message_id=new_message_id(settings=settings))


def check_issue(
    *,
    settings: Settings,
    issue: Issue,
    now: datetime,
    offline: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CheckReport:
    """Build one copy of ``issue`` and check it. Never raises for a problem in the message:
    problems are failed checks. ``transport`` replaces the network (tests). From async code,
    await ``check_issue_async`` instead."""
    return asyncio.run(check_issue_async(settings=settings, issue=issue, now=now,
                                         offline=offline, transport=transport))  # fmt: skip


async def check_issue_async(
    *,
    settings: Settings,
    issue: Issue,
    now: datetime,
    offline: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CheckReport:
    """``check_issue`` for callers already inside an event loop (the send engine)."""
    message = build_check_message(settings=settings, issue=issue, now=now)
    report = CheckReport(message=message)
    report.checks += check_message(message, settings=settings, preheader=issue.preheader)
    if offline:
        report.checks += [
            Check("links answer", None, "skipped (--offline)"),
            Check("one-click unsubscribe answers POST", None, "skipped (--offline)"),
        ]
        return report
    # Not fetched: the check address's own links (its preferences page belongs to nobody; the
    # one-click POST covers the unsubscribe endpoint) and the issue's archive page, which the
    # send itself publishes.
    personal = (f"{settings.base_url}/u/", f"{settings.base_url}/p/")
    later = {f"{settings.base_url}/archive/{issue.week}"}
    report.checks += await network_checks(
        message, transport=transport, skip_prefixes=personal, skip=later
    )
    return report
