from __future__ import annotations

import pytest

from app.errors import SettingsError
from app.settings import load_settings
from app.testing.sendgrid_rules import valid_email

#: Every variable the fail-fast checks read, cleared before each of those tests so the host's values do not leak.
CHECKED = (
    "EMAIL_BACKEND",
    "EMAIL_FROM",
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
    "SMTP_PORT",
    "BROKER_URL",
    "DATABASE_URL",
    "ADMIN_SESSION_SECRET",
    "DATABASE_POOL_SIZE",
)


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
        ("LOG_LEVEL", "LOUD"),
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


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in CHECKED:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    """The one-line message with which ``env`` is refused (the test fails if it is accepted)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    return message


SENDGRID = {"EMAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": "SG.key-not-to-print"}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EMAIL_BACKEND": "sendgrid"}, "SENDGRID_API_KEY"),
        ({"EMAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": "  "}, "SENDGRID_API_KEY"),
        ({**SENDGRID}, "EMAIL_FROM"),  # the default noreply@localhost
        ({**SENDGRID, "EMAIL_FROM": "Jobs <noreply@localhost>"}, "EMAIL_FROM"),
        ({**SENDGRID, "EMAIL_FROM": "jobs-at-example-dot-com"}, "EMAIL_FROM"),
        ({**SENDGRID, "EMAIL_FROM": "jobs@@example.com"}, "EMAIL_FROM"),
        ({"SENDGRID_API_HOST": "api.sendgrid.com"}, "SENDGRID_API_HOST"),
        ({"SENDGRID_API_HOST": "ftp://api.sendgrid.com"}, "SENDGRID_API_HOST"),
        ({"EMAIL_BACKEND": "smtp", "SMTP_PORT": "0"}, "SMTP_PORT"),
        ({"EMAIL_BACKEND": "smtp", "SMTP_PORT": "70000"}, "SMTP_PORT"),
        ({"BROKER_URL": "kafka://broker:9092"}, "BROKER_URL"),
        ({"DATABASE_URL": "postgresql+psycopg2://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql+nodriver://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "oracle://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"ADMIN_SESSION_SECRET": "x" * 31}, "ADMIN_SESSION_SECRET"),
        ({"DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_naming_it(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    message = refusal(clean_env, **env)
    assert message.startswith(f"invalid setting {variable}: ")
    for value in env.values():
        if len(value.strip()) > 3 and value not in ("sendgrid", "smtp"):
            assert value not in message


def test_every_problem_of_a_combination_is_named_at_once(clean_env: pytest.MonkeyPatch) -> None:
    message = refusal(clean_env, EMAIL_BACKEND="sendgrid", ADMIN_SESSION_SECRET="short-secret")
    for variable in ("SENDGRID_API_KEY", "EMAIL_FROM", "ADMIN_SESSION_SECRET"):
        assert f"{variable}: " in message
    assert "short-secret" not in message


@pytest.mark.parametrize(
    "env",
    [
        {"EMAIL_BACKEND": "file"},  # the default sender noreply@localhost is fine without SendGrid
        {"EMAIL_BACKEND": "console"},
        {"EMAIL_BACKEND": "smtp", "SMTP_PORT": "2525"},
        {**SENDGRID, "EMAIL_FROM": "Jobs <noreply@example.com>"},
        {**SENDGRID, "EMAIL_FROM": "noreply@mail.example.co.uk", "SENDGRID_API_HOST": "http://127.0.0.1:9"},
        {"BROKER_URL": "amqp://guest@rabbit:5672/"},
        {"DATABASE_URL": "postgresql+psycopg://u@h/db"},
        {"DATABASE_URL": "sqlite:////srv/jobs.db"},
        {"ADMIN_SESSION_SECRET": "x" * 32},
    ],
)
def test_settings_that_can_work_are_accepted(clean_env: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    settings = load_settings()
    assert settings.email_backend == env.get("EMAIL_BACKEND", "file")


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@example.com",
        "Jobs <noreply@example.com>",
        "noreply@localhost",
        "noreply@example",
        "no reply@example.com",
        "noreply@exa_mple.com",
        "@example.com",
        "",
    ],
)
def test_the_sender_check_agrees_with_the_sendgrid_simulator(
    clean_env: pytest.MonkeyPatch, sender: str
) -> None:
    """What start-up refuses is what SendGrid (as the simulator encodes its rules) would refuse per email."""
    import email.utils

    for name, value in {**SENDGRID, "EMAIL_FROM": sender}.items():
        clean_env.setenv(name, value)
    try:
        load_settings()
        accepted = True
    except SettingsError:
        accepted = False
    assert accepted == valid_email(email.utils.parseaddr(sender)[1])
