"""Helpers every command module shares: settings, clock, output."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from digest.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return load_settings()


def now() -> datetime:
    return datetime.now(UTC)


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no colour codes), for scripts."""
    print(json.dumps(value, indent=2, default=str, ensure_ascii=False))
