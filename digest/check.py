"""The pre-send check: one personalised message of an issue, built exactly as the send builds it,
checked the way receivers and RFCs look at it. Also the DNS records the operator publishes.

``check_issue`` returns a :class:`CheckReport`; ``issue send`` refuses to send when it fails
(unless forced). Network checks (links answer a HEAD, the one-click endpoint answers a POST)
are skipped with ``offline=True``.
"""

from __future__ import annotations

import asyncio
import email
import email.header
import html
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path

import httpx

from digest.models import Issue, Subscriber
from digest.settings import Settings

HTML_LIMIT = 90 * 1024  # Gmail clips near 102 KB and hides the footer (and its unsubscribe link)
SUBJECT_RANGE = (8, 90)
LINK_TIMEOUT = 8.0
LINK_CONCURRENCY = 8
ONE_CLICK = "List-Unsubscribe=One-Click"
FEEDBACK_ID = re.compile(r"^[A-Za-z0-9._=-]+(?::[A-Za-z0-9._=-]+){1,3}$")
LIST_ID = re.compile(r"^(?:.*\s)?<[A-Za-z0-9._-]+\.[A-Za-z0-9.-]+>$")
CHECK_ADDRESS_ID = 0  # a subscriber id no row has: the one-click POST changes nothing


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the table: ``ok`` is True (pass), False (fail) or None (skipped)."""

    name: str
    ok: bool | None
    detail: str = ""


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
    from digest.subscribers.service import preferences_url, unsubscribe_url

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
    report.checks += await _network_checks(
        message, transport=transport, skip_prefixes=personal, skip=later
    )
    return report


# --- the offline checks -----------------------------------------------------------------------


def check_message(message: bytes, *, settings: Settings, preheader: str) -> list[Check]:
    """Every check that needs no network, on the final bytes of one message."""
    parsed = email.message_from_bytes(message)
    checks = [_wire_format(message)]
    checks += _header_checks(parsed)
    checks += _dkim_checks(message, parsed, settings=settings)
    text, page, structure = _parts(parsed)
    checks.append(structure)
    checks.append(
        Check("HTML size", len(page.encode()) < HTML_LIMIT,
              f"{len(page.encode()) / 1024:.1f} KB decoded (limit {HTML_LIMIT // 1024} KB)")
    )  # fmt: skip
    found = _Html.read(page)
    missing_alt = [src for src, alt in found.images if alt is None]
    checks.append(
        Check("images have alt", not missing_alt,
              f"{len(found.images)} images" + (f"; no alt: {', '.join(missing_alt[:3])}"
                                               if missing_alt else ""))
    )  # fmt: skip
    bad = [u for u in found.links if not u.startswith(("https://", "mailto:"))]
    checks.append(
        Check("links are absolute https", not bad,
              f"{len(found.links)} links" + (f"; not https: {', '.join(bad[:3])}" if bad else ""))
    )  # fmt: skip
    address = _squash(settings.postal_address)
    in_text, in_html = address in _squash(text), address in _squash(found.text)
    checks.append(
        Check("postal address in both parts", in_text and in_html,
              f"text part: {'yes' if in_text else 'no'}, HTML part: {'yes' if in_html else 'no'}")
    )  # fmt: skip
    subject = str(email.header.make_header(email.header.decode_header(parsed["Subject"] or "")))
    low, high = SUBJECT_RANGE
    checks.append(
        Check("subject length", low <= len(subject) <= high,
              f"{len(subject)} characters (keep {low}–{high})")
    )  # fmt: skip
    pre = _squash(preheader)
    checks.append(
        Check("preheader present", bool(pre) and pre in _squash(found.text),
              f"{pre[:60]!r}" if pre else "empty: set a preheader (shown after the subject)")
    )  # fmt: skip
    return checks


def _wire_format(message: bytes) -> Check:
    lines = message.split(b"\r\n")
    bare = message.count(b"\n") - message.count(b"\r\n")
    longest = max((len(line) for line in lines), default=0)
    return Check("CRLF lines ≤ 998 octets", bare == 0 and longest <= 998,
                 f"longest line {longest} octets, {bare} bare LF")  # fmt: skip


def _header_checks(parsed: Message) -> list[Check]:
    checks = []
    counts = {name: len(parsed.get_all(name, [])) for name in
              ("From", "Date", "Message-ID", "Subject", "To")}  # fmt: skip
    wrong = [f"{n} ×{c}" for n, c in counts.items() if c != 1]
    checks.append(Check("From, Date, Message-ID, Subject, To once each", not wrong,
                        ", ".join(wrong) or "each once"))  # fmt: skip
    unsub = parsed.get_all("List-Unsubscribe", [])
    uris = re.findall(r"<([^<>]+)>", " ".join(str(v) for v in unsub))
    https = [u for u in uris if u.startswith("https://")]
    checks.append(Check("List-Unsubscribe: one https URI", len(unsub) == 1 and len(https) == 1,
                        ", ".join(uris) or "missing"))  # fmt: skip
    post = [str(v).strip() for v in parsed.get_all("List-Unsubscribe-Post", [])]
    checks.append(Check("List-Unsubscribe-Post: One-Click", post == [ONE_CLICK],
                        "; ".join(post) or "missing"))  # fmt: skip
    list_id = [str(v).strip() for v in parsed.get_all("List-Id", [])]
    checks.append(Check("List-Id", len(list_id) == 1 and bool(LIST_ID.match(list_id[0])),
                        "; ".join(list_id) or "missing"))  # fmt: skip
    feedback = [str(v).strip() for v in parsed.get_all("Feedback-ID", [])]
    personal = any("@" in f for f in feedback)
    well_formed = len(feedback) == 1 and bool(FEEDBACK_ID.match(feedback[0])) and not personal
    checks.append(Check("Feedback-ID format", well_formed, "; ".join(feedback) or "missing"))
    return checks


def _dkim_checks(message: bytes, parsed: Message, *, settings: Settings) -> list[Check]:
    import dkim

    signatures = parsed.get_all("DKIM-Signature", [])
    if not signatures:
        return [Check("DKIM signature valid", False,
                      "not signed: configure a key (`digest dkim keygen`)")]  # fmt: skip
    published = dkim_key(settings)
    if published is None:
        return [Check("DKIM signature valid", False, "signed, but no key is configured")]
    domain, selector, txt = published
    table = {f"{selector}._domainkey.{domain}.".encode(): txt.encode()}
    valid = dkim.verify(message, dnsfunc=lambda name, timeout=5: table.get(name))
    tags = dict(
        part.strip().split("=", 1)
        for part in re.sub(r"\s+", "", str(signatures[-1])).split(";")
        if "=" in part
    )
    signed = {h.strip().lower() for h in tags.get("h", "").split(":")}
    needed = {"from", "list-unsubscribe", "list-unsubscribe-post"}
    from_domain = parsed.get("From", "").rpartition("@")[2].strip(" >").lower()
    d = tags.get("d", "").lower()
    aligned = from_domain == d or from_domain.endswith("." + d)
    return [
        Check("DKIM signature valid", bool(valid), f"d={d} s={tags.get('s', '')}, offline DNS"),
        Check("DKIM covers List-Unsubscribe and -Post", needed <= signed,
              "missing: " + ", ".join(sorted(needed - signed)) if needed - signed
              else "h= includes both"),
        Check("DKIM d= aligned with From (DMARC)", aligned, f"d={d}, From domain {from_domain}"),
    ]  # fmt: skip


def _parts(parsed: Message) -> tuple[str, str, Check]:
    if parsed.get_content_type() != "multipart/alternative":
        return "", "", Check("multipart/alternative, text first", False,
                             f"top level is {parsed.get_content_type()}")  # fmt: skip
    parts = [p for p in parsed.get_payload() if isinstance(p, Message)]
    kinds = [p.get_content_type() for p in parts]
    ok = len(parts) == 2 and kinds == ["text/plain", "text/html"]
    text = _decoded(parts[0]) if parts else ""
    page = _decoded(parts[-1]) if parts else ""
    return text, page, Check("multipart/alternative, text first", ok, " then ".join(kinds))


def _decoded(part: Message) -> str:
    raw = part.get_payload(decode=True)
    return (
        raw.decode(part.get_content_charset() or "utf-8", "replace")
        if isinstance(raw, bytes)
        else ""
    )


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(text)).strip().lower()


class _Html(HTMLParser):
    """Links, images (src, alt) and visible-ish text of the HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []
        self._text: list[str] = []
        self._skip = 0

    @classmethod
    def read(cls, page: str) -> _Html:
        parser = cls()
        parser.feed(page)
        parser.close()
        return parser

    @property
    def text(self) -> str:
        return " ".join(self._text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in {"style", "script"}:
            self._skip += 1
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]).strip())
        if tag == "img":
            self.images.append((str(values.get("src") or ""), values.get("alt")))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._text.append(data)


# --- the network checks -----------------------------------------------------------------------


async def _network_checks(
    message: bytes,
    *,
    transport: httpx.AsyncBaseTransport | None,
    skip_prefixes: tuple[str, ...] = (),
    skip: set[str] | frozenset[str] = frozenset(),
) -> list[Check]:
    parsed = email.message_from_bytes(message)
    _, page, _ = _parts(parsed)
    found = {u for u in _Html.read(page).links if u.startswith("https://")}
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


# --- DNS records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str
    type: str
    value: str
    why: str

    def zone_line(self) -> str:
        """The record as a zone-file line; long TXT values split into 255-octet strings."""
        chunks = [self.value[i : i + 255] for i in range(0, len(self.value), 255)] or [""]
        quoted = " ".join(json.dumps(c) for c in chunks)
        return f"{self.name}. 3600 IN {self.type} {quoted}"


def dkim_key(settings: Settings) -> tuple[str, str, str] | None:
    """``(domain, selector, TXT value)`` of the configured DKIM key, or None when DKIM is off.

    Resolved like ``DkimSigner.from_settings``. Raises ConfigError for an unreadable key."""
    from digest.send.dkim import DEFAULT_FILE, key_file, load_rsa_key, public_txt

    domain, selector = settings.dkim_domain, settings.dkim_selector
    path: Path | None
    if domain:
        path = settings.dkim_private_key or key_file(settings.data_dir, selector=selector,
                                                     domain=domain)  # fmt: skip
    else:
        default = settings.data_dir / "dkim" / DEFAULT_FILE
        if not default.is_file():
            return None
        recorded = json.loads(default.read_text())
        domain, selector, path = recorded["domain"], recorded["selector"], Path(recorded["key"])
    return domain, selector, public_txt(load_rsa_key(path))


def dns_records(settings: Settings) -> list[DnsRecord]:
    """SPF for every envelope domain, DKIM for the configured key, DMARC for the From domain."""
    from_domain = settings.sender_domain
    envelope = [from_domain] + ([settings.verp_domain] if settings.verp_domain else [])
    spf = " ".join(["v=spf1", "mx", *_relay_mechanisms(settings.smtp_host), "~all"])
    records = [
        DnsRecord(domain, "TXT", spf, "SPF: which servers may send for the envelope domain; "
                  "add your provider's include: if it relays for you")
        for domain in dict.fromkeys(envelope)
    ]  # fmt: skip
    key = dkim_key(settings)
    if key is not None:
        domain, selector, txt = key
        why = "DKIM: the public key receivers verify signatures with"
        records.append(DnsRecord(f"{selector}._domainkey.{domain}", "TXT", txt, why))
    records.append(
        DnsRecord(f"_dmarc.{from_domain}", "TXT",
                  f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{from_domain}; adkim=r; aspf=r",
                  "DMARC: required for bulk senders; move p=none to quarantine once the "
                  "reports show only your own mail")
    )  # fmt: skip
    return records


def _relay_mechanisms(host: str) -> Iterable[str]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return [] if host in {"", "localhost"} else [f"a:{host}"]
    if address.is_loopback or address.is_private:
        return []  # a local relay: the public address is whatever mx/a already cover
    return [f"ip{address.version}:{address}"]
