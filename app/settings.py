"""One pydantic-settings ``Settings`` read from the environment.

A missing or malformed value fails at start with one line that names the variable and never echoes its
value, since several of them are secrets. So does a combination that cannot work (SendGrid without a key or
with a sender address SendGrid refuses): a process that starts with it would fail every job separately.
"""

from __future__ import annotations

import email.utils
import functools
import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import SettingsError

#: The project checkout: templates/ and var/ are found relative to it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: An address SendGrid accepts as ``from.email``: a local part and a domain of at least two labels.
SENDGRID_ADDRESS = re.compile(r"^[^@\s\"<>()\[\],;:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
#: Shortest ``ADMIN_SESSION_SECRET``: 32 characters, the 256 bits an HMAC-SHA256 key should carry.
MIN_SESSION_SECRET = 32
#: The one PostgreSQL driver of the platform (psycopg 3); ``postgresql://`` URLs are given it.
PG_DRIVER = "psycopg"


class SettingProblems(ValueError):
    """Raised by the cross-field check: each problem names the variable to fix (not its value)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))
        self.problems = problems


class Settings(BaseSettings):
    """Everything configurable, with the defaults of the embedded (``make run``) set-up."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    redis_url: str = "redis://localhost:6379/0"
    broker_url: str | None = None
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'jobs.db'}"
    #: Connections per process, whatever its thread count (docs/email.md "Connections"); no overflow.
    database_pool_size: int = Field(default=5, ge=1)
    #: How long a step waits for a free connection before failing with a retryable error.
    database_pool_timeout_s: float = Field(default=10.0, gt=0)

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

    #: SAM.gov (docs/samgov.md): the key is required with the real base URL, checked when the sync client starts.
    sam_gov_api_key: SecretStr | None = None
    sam_gov_base_url: str = "https://api.sam.gov"
    #: Requests per UTC day shared by every worker; a percentage of it is kept for on-demand work.
    sam_gov_daily_quota: int = Field(default=1000, ge=1)
    sam_gov_quota_reserve_pct: int = Field(default=10, ge=0, le=90)
    sam_gov_timeout_s: float = Field(default=30.0, gt=0)
    #: In-place retries of a page that fails transiently (5xx, reset, timeout, truncated body).
    sam_gov_page_retries: int = Field(default=3, ge=0, le=10)
    #: What ``offset`` means to the server: a page index, a record offset, or detected on the second page.
    sam_gov_offset_mode: Literal["auto", "page", "record"] = "auto"
    #: Sync runs (docs/sync.md): a range is fetched in windows of this many days, one message each.
    sync_partition_days: int = Field(default=7, ge=1, le=365)
    #: How far back ``full`` (and a first incremental run, with no watermark yet) reaches.
    sync_full_days: int = Field(default=365, ge=1, le=3650)
    #: A run with fewer partitions succeeded than this share is failed and alerts ADMIN_EMAILS.
    sync_min_success_pct: int = Field(default=70, ge=1, le=100)
    #: Retries of a failing sync message (the sync queue's policy) and its first backoff.
    sync_max_retries: int = Field(default=6, ge=0, le=20)
    sync_min_backoff_ms: int = Field(default=30_000, ge=10)
    #: Comma-separated addresses that get operational alerts (a failed sync run) through the email queue.
    admin_emails: str = ""
    #: Retention of ``cleanup_data``, in days (docs/sync.md "Retention").
    retention_job_runs_days: int = Field(default=30, ge=1)
    retention_email_log_days: int = Field(default=180, ge=1)
    retention_outbox_days: int = Field(default=7, ge=1)
    retention_dead_letters_days: int = Field(default=30, ge=1)
    retention_schedule_runs_days: int = Field(default=90, ge=1)
    retention_sync_runs_days: int = Field(default=90, ge=1)
    retention_documents_days: int = Field(default=30, ge=1)
    retention_archived_opportunities_days: int = Field(default=365, ge=1)

    sentry_dsn: SecretStr | None = None
    sentry_environment: str = "production"

    admin_password: SecretStr | None = None
    admin_viewer_password: SecretStr | None = None
    admin_port: int = Field(default=8500, ge=1, le=65535)
    #: Signs admin session cookies; without it each admin process picks a random one (logins end on restart).
    admin_session_secret: SecretStr | None = None
    #: Host names the admin answers to (comma-separated, ``*.example.com`` allowed); loopback names by default
    #: and always loopback only without a password (docs/admin.md "Hosts and origins").
    admin_allowed_hosts: str = ""
    #: Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-Proto / X-Forwarded-For the admin believes.
    admin_trusted_proxies: str = ""
    #: A session unused this long ends; none lives longer than the maximum age.
    admin_session_idle_s: int = Field(default=1800, ge=60)
    admin_session_max_age_s: int = Field(default=12 * 3600, ge=60)
    #: Failed logins (per client and per user) before each further one locks for an exponentially longer time.
    admin_login_max_failures: int = Field(default=5, ge=1)
    admin_login_lockout_s: int = Field(default=30, ge=1)

    storage_dir: Path = PROJECT_ROOT / "var" / "storage"
    #: Weekly summaries attach the user's weekly-summary PDF, generated first by the documents queue.
    weekly_summary_pdf: bool = False
    #: Largest attachment ``process_attachment`` downloads (enforced while streaming); default 50 MB.
    attachment_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    attachment_connect_timeout_s: float = Field(default=10.0, gt=0)
    #: Longest silence between two chunks of a download.
    attachment_read_timeout_s: float = Field(default=30.0, gt=0)
    #: Longest whole download (a server trickling bytes under the read timeout ends here, retried).
    attachment_download_timeout_s: float = Field(default=300.0, gt=0)
    #: Attachment URLs resolving to loopback, private or link-local addresses are refused unless this is set.
    attachment_allow_private_hosts: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    prometheus_multiproc_dir: Path | None = None
    worker_http_port: int | None = Field(default=None, ge=0, le=65535)
    worker_shutdown_timeout_s: int = Field(default=30, ge=1)

    #: The zone of the schedule table's triggers (docs/scheduler.md); an IANA name such as Europe/Paris.
    scheduler_timezone: str = "UTC"
    #: TOML overrides of the schedule table; a bad file stops ``jobs scheduler`` with one line.
    schedules_file: Path | None = None
    #: The leader lock's lifetime: a killed leader is replaced within it.
    scheduler_lock_ttl_s: float = Field(default=15.0, gt=0)
    #: How often the leader renews the lock (and a standby tries to take it); must be under the TTL.
    scheduler_lock_renew_s: float = Field(default=5.0, gt=0)
    #: ``jobs scheduler``'s ``/metrics`` and ``/health``; 0 turns it off.
    scheduler_http_port: int = Field(default=9194, ge=0, le=65535)
    #: Seconds between the leader's imports of Dramatiq's dead-letter queues into the archive.
    scheduler_dlq_sync_interval_s: float = Field(default=300.0, gt=0)
    #: The leader runs the outbox relay in-process; false when ``jobs relay`` runs as its own process instead.
    scheduler_run_relay: bool = True

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
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = f"postgresql+{PG_DRIVER}://" + value.removeprefix("postgresql://")
        try:
            url = make_url(value)
            url.get_dialect()
        except (ArgumentError, NoSuchModuleError):
            raise ValueError("is not a database URL SQLAlchemy knows") from None
        backend, driver = url.get_backend_name(), url.get_driver_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        if backend == "postgresql" and driver != PG_DRIVER:
            raise ValueError(f"names the {driver} driver; the platform runs on psycopg 3: use postgresql://")
        return value

    @field_validator("scheduler_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone name (such as UTC or America/New_York)") from None
        return value

    @field_validator("sendgrid_api_host", "sam_gov_base_url")
    @classmethod
    def _http_host(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _backends_can_work(self) -> Settings:
        """Combinations that would fail every job are refused at start, every one of them named."""
        problems: list[tuple[str, str]] = []
        if self.email_backend == "sendgrid":
            if self.sendgrid_api_key is None or not self.sendgrid_api_key.get_secret_value().strip():
                problems.append(("SENDGRID_API_KEY", "is required when EMAIL_BACKEND=sendgrid"))
            _, address = email.utils.parseaddr(self.email_from)
            if not SENDGRID_ADDRESS.match(address):
                problems.append(
                    (
                        "EMAIL_FROM",
                        "is not an address SendGrid accepts (a domain with a dot, such as "
                        "noreply@example.com) while EMAIL_BACKEND=sendgrid",
                    )
                )
        secret = self.admin_session_secret
        if secret is not None and len(secret.get_secret_value()) < MIN_SESSION_SECRET:
            problems.append(("ADMIN_SESSION_SECRET", f"must be at least {MIN_SESSION_SECRET} characters"))
        if not _networks_parse(self.admin_trusted_proxies):
            problems.append(("ADMIN_TRUSTED_PROXIES", "must be IP addresses or CIDRs separated by commas"))
        if self.admin_session_idle_s > self.admin_session_max_age_s:
            problems.append(("ADMIN_SESSION_IDLE_S", "must not exceed ADMIN_SESSION_MAX_AGE_S"))
        if any("@" not in address for address in self.admin_email_list):
            problems.append(("ADMIN_EMAILS", "must be email addresses separated by commas"))
        if self.scheduler_lock_renew_s >= self.scheduler_lock_ttl_s:
            problems.append(("SCHEDULER_LOCK_RENEW_S", "must be less than SCHEDULER_LOCK_TTL_S"))
        if problems:
            raise SettingProblems(problems)
        return self

    @property
    def admin_email_list(self) -> list[str]:
        """``ADMIN_EMAILS`` split on commas, blanks dropped."""
        return [part.strip() for part in self.admin_emails.split(",") if part.strip()]

    @property
    def sam_gov_quota_reserve(self) -> int:
        """Requests of each day's SAM.gov quota that only on-demand work may spend."""
        return self.sam_gov_daily_quota * self.sam_gov_quota_reserve_pct // 100

    @property
    def effective_broker_url(self) -> str:
        """``BROKER_URL`` when set, else ``REDIS_URL``: one Redis serves broker and locks by default."""
        return self.broker_url or self.redis_url


def _networks_parse(value: str) -> bool:
    """Whether a comma-separated list of IPs/CIDRs parses (the admin's trusted proxies)."""
    try:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)
    except ValueError:
        return False
    return True


def _describe(err: ValidationError) -> str:
    """One line naming every bad variable but never its value (it may be a secret)."""
    parts = []
    for item in err.errors(include_input=False, include_url=False):
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, SettingProblems):
            parts += [f"{name}: {message}" for name, message in cause.problems]
            continue
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
