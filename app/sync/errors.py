"""How a SAM.gov call failed, classified for the retry policy (docs/samgov.md "Errors").

Every message is built by the client from SAM.gov's own words and the redacted URL: the API key travels as a
query parameter, so no httpx exception text or request URL is ever put into one of these unredacted.
"""

from __future__ import annotations

from app.errors import PermanentError, RateLimited, RetryableError


class SamGovRejected(PermanentError):
    """SAM.gov refused the request (400): retrying the same query cannot succeed."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(f"SAM.gov rejected the request ({status}): {message}")
        #: SAM.gov's own message (``errorMessage`` / ``error.message``), kept for the run's error column.
        self.reason = message
        self.status = status


class SamGovAuthError(PermanentError):
    """SAM.gov refused the key (401/403): check SAM_GOV_API_KEY."""

    def __init__(self, status: int, message: str = "") -> None:
        detail = f": {message}" if message else ""
        super().__init__(f"SAM.gov refused the API key ({status}){detail}; check SAM_GOV_API_KEY")
        self.status = status


class SamGovRateLimited(RateLimited):
    """SAM.gov answered 429: the key's daily quota is spent until ``nextAccessTime`` (else the next 00:00 UTC)."""


class QuotaReserved(RateLimited):
    """The local daily budget refuses the request: scheduled work waits for 00:00 UTC instead of eating the
    reserve kept for on-demand work (or the whole quota is spent)."""


class SamGovUnavailable(RetryableError):
    """SAM.gov did not give a usable answer (5xx, reset, timeout, truncated body) even after in-place retries."""
