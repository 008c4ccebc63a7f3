"""The `digest` command. Each noun lives in its own module that adds commands to the shared
sub-apps below; this file only wires them together and turns DigestError into one line."""

from __future__ import annotations

import sys

import typer

from digest.errors import DigestError

app = typer.Typer(
    name="digest",
    help="Build and send a publisher's weekly newsletter.\n\n"
    "Quick start: digest demo   (ingests a real week of news, builds and sends an issue)",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # help paragraphs reflow to the terminal; `code` is styled
    pretty_exceptions_enable=False,
    add_completion=False,
)
issue_app = typer.Typer(help="Build, inspect, preview and send issues.", no_args_is_help=True)
subscribers_app = typer.Typer(help="Manage subscribers and their consent.", no_args_is_help=True)
sources_app = typer.Typer(help="Manage the sources articles come from.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)

app.add_typer(issue_app, name="issue")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(sources_app, name="sources")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

# One import per noun: each module registers its commands on the apps above.
from digest.cli import bounces as _bounces  # noqa: E402,F401
from digest.cli import config as _config  # noqa: E402,F401
from digest.cli import consent as _consent  # noqa: E402,F401
from digest.cli import demo as _demo  # noqa: E402,F401
from digest.cli import dkim as _dkim  # noqa: E402,F401
from digest.cli import dns as _dns  # noqa: E402,F401
from digest.cli import extract as _extract  # noqa: E402,F401
from digest.cli import ingest as _ingest  # noqa: E402,F401
from digest.cli import issue as _issue  # noqa: E402,F401
from digest.cli import issue_check as _issue_check  # noqa: E402,F401
from digest.cli import issue_edit as _issue_edit  # noqa: E402,F401
from digest.cli import issue_schedule as _issue_schedule  # noqa: E402,F401
from digest.cli import issue_send as _issue_send  # noqa: E402,F401
from digest.cli import scheduler as _scheduler  # noqa: E402,F401
from digest.cli import sources as _sources  # noqa: E402,F401
from digest.cli import subscribers as _subscribers  # noqa: E402,F401
from digest.cli import suppressions as _suppressions  # noqa: E402,F401
from digest.cli import web as _web  # noqa: E402,F401


def main() -> None:
    """Console entry point: a DigestError is one line on stderr and exit status 1."""
    try:
        app(standalone_mode=False)
    except DigestError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
