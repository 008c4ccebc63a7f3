"""Shared by the CLI tests: the environment that points `digest` at a test's settings, and
`digest` run in process that way."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from digest.settings import Settings


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """DIGEST_* variables for ``settings``' data folder, database, base URL and secret, plus
    ``extra`` (which wins)."""
    return {
        "DIGEST_DATA_DIR": str(settings.data_dir),
        "DIGEST_DATABASE_URL": settings.db_url,
        "DIGEST_BASE_URL": settings.base_url,
        "DIGEST_SECRET_KEY": settings.secret_key.get_secret_value(),
        **extra,
    }


def run_cli(settings: Settings, *args: str, **env: str) -> Result:
    """``digest <args>`` in process, configured through the environment like ``settings`` (also
    its From address); ``env`` adds or overrides."""
    from digest.cli import app  # the whole CLI loads only for the tests that run it

    variables = {
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_FROM_EMAIL": settings.from_email,
        **env,
    }
    return CliRunner().invoke(app, list(args), env=env_for(settings, **variables))
