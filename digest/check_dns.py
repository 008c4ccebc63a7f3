"""The DNS records the operator publishes for the digest's mail (SPF, DKIM, DMARC), and the
configured DKIM key's public half, which the pre-send check verifies signatures against.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from digest.settings import Settings


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
