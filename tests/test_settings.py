"""One settings object: environment, TOML file, defaults, and a secret made once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.settings import Settings, load_settings


def test_environment_wins_over_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('smtp_port = 2525\nfrom_name = "Weekly Wire"\n')
    monkeypatch.setenv("DIGEST_CONFIG", str(config))
    monkeypatch.setenv("DIGEST_SMTP_PORT", "587")
    loaded = load_settings()
    assert (loaded.smtp_port, loaded.from_name) == (587, "Weekly Wire")


def test_a_bad_value_names_its_environment_variable() -> None:
    with pytest.raises(ConfigError, match="DIGEST_SMTP_TLS"):
        load_settings(smtp_tls="sometimes")


def test_the_default_database_is_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).db_url == f"sqlite:///{tmp_path.resolve()}/digest.db"


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from digest.settings import Settings; "
        "print(Settings(data_dir=Path(sys.argv[1])).secret().decode())"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    secrets_seen = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(secrets_seen) == 1 and len(next(iter(secrets_seen))) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]
