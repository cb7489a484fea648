from __future__ import annotations

import pytest

from app.errors import SettingsError
from app.settings import load_settings


def test_defaults_are_the_embedded_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "BROKER_URL", "DATABASE_URL", "EMAIL_BACKEND", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.effective_broker_url == settings.redis_url
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("var/jobs.db")
    assert settings.email_backend == "file"
    assert settings.admin_port == 8500


def test_postgres_urls_get_the_psycopg_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert load_settings().database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "http://nope"),
        ("ADMIN_PORT", "eighty"),
        ("SCHEDULER_TIMEZONE", "Mars/Olympus"),
        ("EMAIL_BACKEND", "pigeon"),
        ("DATABASE_URL", "mysql://x"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message
    assert "\n" not in message


def test_a_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_BACKEND", "sendgrid")
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "mysql://user:hunter2@db/x")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    assert "DATABASE_URL" in str(caught.value)


def test_secrets_are_hidden_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.very-secret")
    settings = load_settings()
    assert "very-secret" not in repr(settings)
    assert settings.sendgrid_api_key is not None
    assert settings.sendgrid_api_key.get_secret_value() == "SG.very-secret"


def test_the_autocommit_pool_takes_psycopg2_on_postgresql_only() -> None:
    from app.db.session import autocommit_url

    url = "postgresql+psycopg://jobs:p%40ss@db:5432/jobs?options=-csearch_path%3Dtenant"
    assert (
        autocommit_url(url) == "postgresql+psycopg2://jobs:p%40ss@db:5432/jobs?options=-csearch_path%3Dtenant"
    )
    assert autocommit_url("sqlite:////srv/jobs.db") == "sqlite:////srv/jobs.db"
