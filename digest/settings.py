"""One typed Settings object: the only reader of ``os.environ``.

Values come, highest first, from: keyword arguments (tests build ``Settings(...)`` directly),
``DIGEST_*`` environment variables, a TOML file (``DIGEST_CONFIG``, default ``./digest.toml`` when
present), then the defaults below. Every field has a default that works on a bare machine
(SQLite under ``./var``, a local SMTP sink on port 8025) and a description that
``digest config show`` prints.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from digest.errors import ConfigError

SECRET_FIELDS = frozenset({"secret_key", "smtp_password", "operator_password", "imap_password"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIGEST_", extra="ignore", frozen=True)

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(Path("var"), description="Folder for the database, mail, previews.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means SQLite at DATA_DIR/digest.db."
    )

    # --- the newsletter --------------------------------------------------------------------
    newsletter_name: str = Field("The Friday Digest", description="Shown in mail and on the web.")
    newsletter_id: str = Field("friday", description="Short stable id (List-Id, Feedback-ID).")
    base_url: str = Field(
        "http://127.0.0.1:8000", description="Public URL that links in mail point to."
    )
    from_email: str = Field("digest@example.org", description="From address of the digest.")
    from_name: str = Field("The Friday Digest", description="From display name of the digest.")
    transactional_from_email: str = Field(
        "confirm@example.org", description="From address of confirmations (not promotional)."
    )
    reply_to: str = Field("", description="Optional Reply-To address.")
    postal_address: str = Field(
        "Example Newsroom, 1 Market Street, Springfield 12345",
        description="Sender's postal address, printed in every message (CAN-SPAM).",
    )
    timezone: str = Field("Europe/London", description="IANA zone of the newsletter's week.")
    locale: str = Field("en_GB", description="Locale for dates in mail (Babel).")
    secret_key: SecretStr = Field(
        SecretStr(""),
        description="Signs tokens and sessions; empty means one kept in DATA_DIR/secret_key.",
    )
    operator_password: SecretStr = Field(
        SecretStr(""), description="Password for drafts and test sends in `digest web`."
    )

    # --- SMTP -------------------------------------------------------------------------------
    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(8025, description="SMTP relay port.")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "none", description="none, starttls (587) or tls (465); never chosen implicitly."
    )
    smtp_user: str = Field("", description="SMTP AUTH user (empty: no AUTH).")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP AUTH password.")
    smtp_timeout: float = Field(30.0, description="Seconds before an SMTP command times out.")
    smtp_connections: int = Field(4, ge=1, le=64, description="Persistent connections in the pool.")
    smtp_recycle_after: int = Field(
        200, ge=1, description="Messages per connection before reconnect."
    )
    rate_per_second: float = Field(0.0, ge=0, description="Max messages/second (0: unlimited).")
    rate_per_hour: int = Field(0, ge=0, description="Max messages/hour (0: unlimited).")
    rate_per_day: int = Field(0, ge=0, description="Max messages/day (0: unlimited).")
    verp_domain: str = Field("", description="Domain for VERP bounces+TOKEN@domain; empty: off.")

    # --- DKIM -------------------------------------------------------------------------------
    dkim_domain: str = Field("", description="DKIM d= domain; empty: do not sign.")
    dkim_selector: str = Field("digest", description="DKIM s= selector.")
    dkim_private_key: Path | None = Field(None, description="PEM file of the RSA-2048 key.")
    dkim_ed25519_key: Path | None = Field(
        None, description="Optional Ed25519 PEM key: a second signature, selector SELECTOR-ed."
    )

    # --- selection ---------------------------------------------------------------------------
    items_per_issue: int = Field(12, ge=1, le=60, description="Stories picked per issue.")
    min_stories: int = Field(3, ge=0, description="Fewer stories than this: build stops.")
    max_outlet_share: float = Field(0.3, gt=0, le=1, description="Max share of picks per outlet.")
    blurb_chars: int = Field(280, ge=60, description="Character budget of one blurb.")
    section_order: list[str] = Field(
        default_factory=list, description="Sections in the order they appear."
    )
    section_quota: int | None = Field(
        None, ge=1, description="Max picks per section (empty: no quota)."
    )
    selection_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Ranking weights by part (coverage, recency, source, boost, quality); "
        "missing parts keep their defaults.",
    )
    window_days: int = Field(
        7, ge=1, le=31, description="Days before the send time that make up an issue's week."
    )

    # --- schedule ----------------------------------------------------------------------------
    ingest_every_minutes: int = Field(60, ge=1, description="How often sources are polled.")
    fetch_timeout: float = Field(
        20.0, gt=0, description="Seconds before a feed or page fetch gives up."
    )
    max_page_bytes: int = Field(
        5_000_000, ge=10_000, description="Largest feed or page fetched or cleaned, in bytes."
    )
    ingest_languages: list[str] = Field(
        default_factory=list,
        description="Languages accepted from pages (ISO 639-1); empty: the LOCALE's language.",
    )
    build_at: str = Field("fri 06:00", description="When the week's issue is built (local).")
    send_at: str = Field("fri 08:00", description="When the issue is sent (local).")
    auto_send: bool = Field(True, description="Send built issues without approval.")
    send_deadline_hours: float = Field(24.0, description="A send later than this is marked missed.")
    misfire_grace_minutes: int = Field(60, description="Missed runs younger than this run now.")
    operator_email: str = Field(
        "",
        description=(
            "Told by mail about drafts awaiting approval and missed sends (empty: log only)."
        ),
    )
    raw_retention_days: int = Field(
        90, ge=1, description="Raw ingest data older than this is pruned."
    )

    # --- bounces -----------------------------------------------------------------------------
    imap_host: str = Field("", description="Bounce mailbox host (empty: no polling).")
    imap_user: str = Field("", description="Bounce mailbox user.")
    imap_password: SecretStr = Field(SecretStr(""), description="Bounce mailbox password.")
    soft_bounce_limit: int = Field(3, ge=1, description="Soft bounces before suppression.")
    imap_port: int = Field(993, description="Bounce mailbox port (993 for TLS, 143 for STARTTLS).")
    imap_tls: Literal["tls", "starttls"] = Field(
        "tls", description="tls (implicit, port 993) or starttls (port 143); never plaintext."
    )
    imap_folder: str = Field("INBOX", description="Folder the bounces arrive in.")
    imap_done_folder: str = Field(
        "Processed", description="Folder handled bounces are moved to (never deleted)."
    )
    soft_bounce_window_days: int = Field(
        30, ge=1, description="Soft bounces count toward the limit within this many days."
    )
    policy_pause_threshold: int = Field(
        5, ge=1, description="Policy rejections in one issue that pause its send and alert."
    )

    # --- branding ----------------------------------------------------------------------------
    brand_color: str = Field("#1a5276", description="Accent colour (links, masthead).")
    brand_logo_url: str = Field("", description="Logo image URL (https); empty: text masthead.")
    brand_font: str = Field(
        "Georgia, 'Times New Roman', serif", description="Font stack with safe fallbacks."
    )
    footer_text: str = Field(
        "You receive this because you subscribed to our weekly newsletter.",
        description="Why the reader receives the digest.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = os.environ.get("DIGEST_CONFIG", "digest.toml")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if Path(config).is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")

    # --- derived values ------------------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'digest.db'}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def preview_dir(self) -> Path:
        return self.data_dir / "previews"

    @property
    def sender_domain(self) -> str:
        return self.from_email.rpartition("@")[2] or "localhost"

    def secret(self) -> bytes:
        """The signing secret: the configured one, else one created once in the data folder."""
        configured = self.secret_key.get_secret_value()
        if configured:
            return configured.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # Written whole under a temporary name, then linked into place: when two processes
            # start at once, one link wins and both read the same secret.
            tmp = path.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip().encode()

    def shown(self) -> dict[str, Any]:
        """Effective values for display, secrets masked."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                value = "********" if value.get_secret_value() else "(unset)"
            elif name == "database_url":
                value = _mask_url_password(self.db_url)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":********@", 1)
    return url


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once, at the edge; raise ConfigError with one readable line."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(
            f"setting {field.upper()} (env DIGEST_{field.upper()}): {first['msg']}"
        ) from None
