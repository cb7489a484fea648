"""One pydantic-settings ``Settings`` read from the environment (ARCHITECTURE.md "Settings").

A missing or malformed value fails at start with one line that names the variable and never echoes its
value, since several of them are secrets.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import SettingsError

#: The project checkout: templates/ and var/ are found relative to it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything configurable, with the defaults of the embedded (``make run``) set-up."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    redis_url: str = "redis://localhost:6379/0"
    broker_url: str | None = None
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'jobs.db'}"

    email_backend: Literal["sendgrid", "smtp", "file", "console"] = "file"
    email_from: str = "noreply@localhost"
    email_outbox_dir: Path = PROJECT_ROOT / "var" / "outbox"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    sendgrid_api_key: SecretStr | None = None
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_timeout_s: float = Field(default=10.0, gt=0)
    reminder_window_days: int = Field(default=7, ge=1, le=90)
    public_base_url: str = "http://localhost:8000"

    sam_gov_api_key: SecretStr | None = None
    sam_gov_base_url: str = "https://api.sam.gov"

    sentry_dsn: SecretStr | None = None
    sentry_environment: str = "production"

    admin_password: SecretStr | None = None
    admin_viewer_password: SecretStr | None = None
    admin_port: int = Field(default=8500, ge=1, le=65535)
    #: Signs admin session cookies; without it each admin process picks a random one (logins end on restart).
    admin_session_secret: SecretStr | None = None

    storage_dir: Path = PROJECT_ROOT / "var" / "storage"
    scheduler_timezone: str = "UTC"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    prometheus_multiproc_dir: Path | None = None
    worker_http_port: int | None = Field(default=None, ge=0, le=65535)
    worker_shutdown_timeout_s: int = Field(default=30, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("redis://", "rediss://", "unix://", "amqp://", "amqps://")
        ):
            raise ValueError("must start with redis:// or amqp://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("scheduler_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError("is not a known IANA time zone") from err
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sendgrid_needs_key(self) -> Settings:
        if self.email_backend == "sendgrid" and self.sendgrid_api_key is None:
            raise ValueError("SENDGRID_API_KEY is required when EMAIL_BACKEND=sendgrid")
        return self

    @property
    def effective_broker_url(self) -> str:
        """``BROKER_URL`` when set, else ``REDIS_URL``: one Redis serves broker and locks by default."""
        return self.broker_url or self.redis_url


def _describe(err: ValidationError) -> str:
    """One line per bad variable, naming it but never its value (it may be a secret)."""
    parts = []
    for item in err.errors(include_input=False, include_url=False):
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{name}: {message}")
    return "invalid setting " + "; ".join(parts)


def load_settings() -> Settings:
    """Read the environment now; raises :class:`SettingsError` with a one-line, secret-free message."""
    try:
        return Settings()
    except ValidationError as err:
        raise SettingsError(_describe(err)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call ``get_settings.cache_clear()`` after changing env."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings so the next :func:`get_settings` reads the environment again."""
    get_settings.cache_clear()


def env_flag(name: str) -> bool:
    """True for the usual spellings of yes in an environment variable (used for CI-only switches)."""
    return os.environ.get(name, "").lower() in {"1", "true", "yes", "on"}
