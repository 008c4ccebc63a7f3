"""`digest config show` and `digest db upgrade`."""

from __future__ import annotations

import typer
from rich.table import Table

from digest.cli import config_app, db_app
from digest.cli.common import console, print_json, settings
from digest.settings import Settings


@config_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the effective settings, secrets masked.

    Example: DIGEST_SMTP_PORT=2525 digest config show --json
    """
    values = settings().shown()
    if as_json:
        print_json(values)
        return
    table = Table("setting", "value", "environment variable", "meaning")
    for name, value in values.items():
        field = Settings.model_fields[name]
        table.add_row(name, str(value), f"DIGEST_{name.upper()}", field.description or "")
    console.print(table)


@db_app.command("upgrade")
def upgrade() -> None:
    """Create or upgrade the database schema (every command also does this on first use).

    Example: DIGEST_DATABASE_URL=postgresql+psycopg://digest@db/digest digest db upgrade
    """
    from digest.db import current_revision, make_engine

    engine = make_engine(settings())
    url = engine.url.render_as_string(hide_password=True)
    console.print(f"database at revision {current_revision(engine)} ({url})")
