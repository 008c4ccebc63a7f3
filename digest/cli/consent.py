"""`digest consent verify`: check the hash chain of the consent log."""

from __future__ import annotations

import typer

from digest.cli import app
from digest.cli.common import console, print_json
from digest.cli.subscribers import db_session
from digest.errors import CheckFailed

consent_app = typer.Typer(help="The append-only consent log.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")


@consent_app.command("verify")
def verify(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Check the hash chain of the consent log; exit 1 at the first broken event.

    Names the first event that was edited, deleted or reordered. Keep the printed head hash
    somewhere else: a later run that does not reach it means events were cut off the end.

    Example: digest consent verify
    """
    from digest.subscribers.chain import verify_chain

    with db_session() as session:
        report = verify_chain(session)
    if as_json:
        print_json(report.as_dict())
    if not report.ok:
        raise CheckFailed(f"consent log broken at event {report.first_bad_id}: {report.problem}")
    if not as_json:
        console.print(f"ok: {report.events} events, head {report.head}", highlight=False)
