"""`digest web`: the preview, archive and subscription pages."""

from __future__ import annotations

import typer

from digest.cli import app
from digest.cli.common import console, settings


@app.command("web")
def web(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Serve the web side: issue previews, the public archive, subscribe/confirm/unsubscribe.

    Example: digest web --host 0.0.0.0 --port 8000
    """
    import uvicorn

    from digest.db import make_engine
    from digest.web.app import create_app

    cfg = settings()
    make_engine(cfg)  # create or upgrade the schema before the first request
    console.print(f"serving {cfg.newsletter_name} on http://{host}:{port}/")
    uvicorn.run(create_app(cfg), host=host, port=port, log_level="info")
