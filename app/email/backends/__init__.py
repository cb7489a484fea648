"""Email transports, chosen by ``EMAIL_BACKEND``: sendgrid, smtp, file (the default) and console.

Every backend takes an :class:`~app.email.message.OutgoingEmail` and returns the provider's message id (or its
own), raising the platform's errors (:mod:`app.errors`) so that the retry policy can tell transient from
permanent failures.
"""

from __future__ import annotations

from typing import Protocol

from app.email.message import OutgoingEmail
from app.settings import Settings, get_settings


class EmailBackend(Protocol):
    """A transport. ``send`` returns the id under which the provider knows the message."""

    name: str

    def send(self, outgoing: OutgoingEmail) -> str | None: ...


def build_backend(settings: Settings) -> EmailBackend:
    """The backend ``settings`` select; imports only that backend's client library."""
    if settings.email_backend == "sendgrid":
        from app.email.backends.sendgrid import SendGridBackend

        assert settings.sendgrid_api_key is not None  # Settings refuses sendgrid without a key
        return SendGridBackend(
            api_key=settings.sendgrid_api_key.get_secret_value(),
            host=settings.sendgrid_api_host,
            timeout_s=settings.sendgrid_timeout_s,
            sender=settings.email_from,
        )
    if settings.email_backend == "smtp":
        from app.email.backends.smtp import SmtpBackend

        return SmtpBackend(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            timeout_s=settings.sendgrid_timeout_s,
        )
    if settings.email_backend == "console":
        from app.email.backends.console import ConsoleBackend

        return ConsoleBackend(sender=settings.email_from)
    from app.email.backends.file import FileBackend

    return FileBackend(directory=settings.email_outbox_dir, sender=settings.email_from)


_cached: tuple[Settings, EmailBackend] | None = None


def get_backend() -> EmailBackend:
    """The process's backend, rebuilt only when the settings object changes (tests reset it to switch)."""
    global _cached
    settings = get_settings()
    cached = _cached
    if cached is None or cached[0] is not settings:
        if cached is not None:
            _close(cached[1])
        cached = _cached = (settings, build_backend(settings))
    return cached[1]


def _close(backend: EmailBackend) -> None:
    """Release what a replaced backend holds (the SendGrid backend's pooled connections)."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()
