"""The offline half of the pre-send check: every check that reads only the final bytes of one
personalised message (wire format, headers, DKIM, MIME structure, size, alt text, links, postal
address, subject, preheader), as receivers and RFCs look at them.

Also the readers the network checks share: the decoded parts and what the HTML part holds.
"""

from __future__ import annotations

import email
import email.header
import html
import re
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser

from digest.check_dns import dkim_key
from digest.settings import Settings

HTML_LIMIT = 90 * 1024  # Gmail clips near 102 KB and hides the footer (and its unsubscribe link)
SUBJECT_RANGE = (8, 90)
ONE_CLICK = "List-Unsubscribe=One-Click"
FEEDBACK_ID = re.compile(r"^[A-Za-z0-9._=-]+(?::[A-Za-z0-9._=-]+){1,3}$")
LIST_ID = re.compile(r"^(?:.*\s)?<[A-Za-z0-9._-]+\.[A-Za-z0-9.-]+>$")


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the table: ``ok`` is True (pass), False (fail) or None (skipped)."""

    name: str
    ok: bool | None
    detail: str = ""


def check_message(message: bytes, *, settings: Settings, preheader: str) -> list[Check]:
    """Every check that needs no network, on the final bytes of one message."""
    parsed = email.message_from_bytes(message)
    checks = [_wire_format(message)]
    checks += _header_checks(parsed)
    checks += _dkim_checks(message, parsed, settings=settings)
    text, page, structure = message_parts(parsed)
    checks.append(structure)
    checks.append(
        Check("HTML size", len(page.encode()) < HTML_LIMIT,
              f"{len(page.encode()) / 1024:.1f} KB decoded (limit {HTML_LIMIT // 1024} KB)")
    )  # fmt: skip
    found = HtmlScan.read(page)
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


def message_parts(parsed: Message) -> tuple[str, str, Check]:
    """(text part, HTML part, the structure check): both decoded, empty when missing."""
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


class HtmlScan(HTMLParser):
    """Links, images (src, alt) and visible-ish text of the HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []
        self._text: list[str] = []
        self._skip = 0

    @classmethod
    def read(cls, page: str) -> HtmlScan:
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
