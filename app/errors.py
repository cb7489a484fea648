"""The error hierarchy that decides between retry and dead letter.

Service code raises these (wrapping client-library errors with ``raise X(...) from err`` where it classifies
them); the retry-policy middleware reads only the class. Anything else is treated as retryable.
"""

from __future__ import annotations


class JobError(Exception):
    """A job failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or type(self).__name__).strip())


class RetryableError(JobError):
    """A transient failure (timeout, 5xx, lost connection): retried with exponential backoff."""


class RateLimited(RetryableError):
    """The remote service asked us to wait: retried at that time without spending an attempt."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message or f"rate limited; retry after {retry_after:.0f} s")
        #: Seconds to wait before the next attempt.
        self.retry_after = max(0.0, float(retry_after))


class DatabaseBusy(RetryableError):
    """Every database connection of this process stayed in use for the pool timeout: retried with backoff."""


class PermanentError(JobError):
    """A failure that will not go away by retrying (4xx, missing record): dead-lettered at once."""


class InvalidJob(PermanentError):
    """The job's arguments are invalid: raised at the enqueue call site, dead-lettered if met in a worker."""


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable, never its value."""
