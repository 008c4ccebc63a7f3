"""`digest dkim keygen`: a new DKIM key in the data folder, made the default, TXT record out."""

from __future__ import annotations

import typer

from digest.cli import app
from digest.cli.common import err_console, settings

dkim_app = typer.Typer(help="DKIM signing keys.", no_args_is_help=True)
app.add_typer(dkim_app, name="dkim")


@dkim_app.command("keygen")
def keygen(
    selector: str = typer.Option(..., "--selector", help="DKIM selector, e.g. digest2026."),
    domain: str = typer.Option(..., "--domain", help="Signing domain (d=), your From domain."),
) -> None:
    """Write a new RSA-2048 key to DATA_DIR/dkim/, make it the default signing key, and print
    the DNS TXT record (one line) to publish at SELECTOR._domainkey.DOMAIN.

    DIGEST_DKIM_DOMAIN/SELECTOR/PRIVATE_KEY, when set, still take precedence over the default.
    With DIGEST_FROM_EMAIL at DOMAIN, the signature aligns with From for DMARC.

    Example: digest dkim keygen --selector digest2026 --domain news.example.org
    """
    from digest.send.dkim import generate_key, key_file, make_default
    from digest.send.headers import check_header_value

    cfg = settings()
    for value, what in ((selector, "--selector"), (domain, "--domain")):
        check_header_value(value, field=what)
    path = key_file(cfg.data_dir, selector=selector, domain=domain.lower())
    txt = generate_key(path=path)
    make_default(data_dir=cfg.data_dir, selector=selector, domain=domain.lower(), key=path)
    err_console.print(
        f"key written to {path} (mode 0600) and made the default; publish this TXT record at "
        f"{selector}._domainkey.{domain.lower()}:",
        highlight=False,
        markup=False,
    )
    print(txt)
