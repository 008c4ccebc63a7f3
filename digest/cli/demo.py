"""`digest demo`: the whole Friday digest on the embedded default."""

from __future__ import annotations

import typer

from digest.cli import app
from digest.cli.common import console, now, settings


@app.command("demo")
def demo(
    subscribers: int = typer.Option(
        5, "--subscribers", min=0, help="Synthetic confirmed subscribers."
    ),
    no_send: bool = typer.Option(False, "--no-send", help="Prepare everything but do not send."),
) -> None:
    """Ingest a real week of news, build its issue and send it to demo subscribers through a
    local SMTP server that writes every message to DATA_DIR/outbox.

    Example: digest demo --subscribers 2000 --no-send
    """
    from digest.demo import run_demo

    cfg = settings()
    result = run_demo(
        settings=cfg, now=now(), subscribers=subscribers, send=not no_send,
        say=lambda line: console.print(line, highlight=False),
    )  # fmt: skip
    console.print(
        f"\n[bold]Done.[/bold] {result.articles} articles of {result.week} read, "
        f"{result.ingested} stored ({result.failed} failed); {result.picked} items picked "
        f"from {result.stories} stories; {result.delivered} of {result.subscribers} "
        f"messages delivered.\n"
        f"  mail received:  {result.outbox.resolve()}/*.eml\n"
        f"  the issue:      {result.html_path.resolve()}\n"
        f"  in a browser:   digest web   then open http://127.0.0.1:8000/archive/{result.week}\n"
        f"                  (drafts and previews at /issues need DIGEST_OPERATOR_PASSWORD)",
        highlight=False,
    )
