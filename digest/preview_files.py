"""Write an issue's parts to files for a person to open (``digest issue preview``)."""

from __future__ import annotations

from pathlib import Path

from digest.db import make_engine, session_scope
from digest.settings import Settings
from digest.store.issues import get_issue


def write_preview(
    *, settings: Settings, ref: str | None, folder: Path | None = None
) -> tuple[Path, Path]:
    """Write ``<week>.html`` and ``<week>.txt`` with example personal links; return the paths."""
    from digest.render import fill_examples

    with session_scope(make_engine(settings)) as session:
        issue = get_issue(session, newsletter=settings.newsletter_id, ref=ref)
    folder = folder or settings.preview_dir
    folder.mkdir(parents=True, exist_ok=True)
    html = fill_examples(issue.html, base_url=settings.base_url, html_part=True)
    text = fill_examples(issue.text, base_url=settings.base_url, html_part=False)
    html_path, text_path = folder / f"{issue.week}.html", folder / f"{issue.week}.txt"
    html_path.write_text(html, encoding="utf-8")
    text_path.write_text(text, encoding="utf-8")
    return html_path, text_path
