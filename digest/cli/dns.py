"""`digest dns-records`: the SPF, DKIM and DMARC records to publish."""

from __future__ import annotations

import typer

from digest.cli import app
from digest.cli.common import console, print_json, settings


@app.command("dns-records")
def dns_records_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the DNS records receivers check: SPF for the envelope domains, DKIM for the
    configured key (`digest dkim keygen` makes one), DMARC for the From domain.

    Example: digest dns-records >> zone.txt
    """
    from digest.check_dns import dns_records

    records = dns_records(settings())
    if as_json:
        print_json([{"name": r.name, "type": r.type, "value": r.value, "why": r.why}
                    for r in records])  # fmt: skip
        return
    for record in records:
        console.print(f"; {record.why}", highlight=False, markup=False, soft_wrap=True)
        console.print(record.zone_line(), highlight=False, markup=False, soft_wrap=True)
