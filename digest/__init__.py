"""digest: builds and sends a publisher's weekly newsletter.

The public entry points are the pipeline functions in :mod:`digest.pipeline` and the cleaner
:func:`digest.extract`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from digest.ingest.extract import Extracted


def extract(content: str | bytes, *, kind: str | None = None, url: str | None = None) -> Extracted:
    """Clean one page or text dump into an article; see :func:`digest.ingest.extract.extract`."""
    from digest.ingest.extract import extract as _extract

    return _extract(content, kind=kind, url=url)


def __getattr__(name: str) -> Any:
    raise AttributeError(name)
