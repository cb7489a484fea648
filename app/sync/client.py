"""The SAM.gov HTTP client: opportunities and entities, paged, budgeted, classified, and never leaking the key.

One :class:`SamGovClient` per process (httpx keeps connections alive and is safe to share between threads).
Every request first spends one unit of the shared daily :class:`~app.sync.quota.QuotaBudget`; a request that
fails transiently (5xx, reset, timeout, truncated JSON) is retried in place ``page_retries`` times with
exponential backoff before :class:`SamGovUnavailable` is raised, so a run does not lose its place for one bad
page. What cannot succeed by retrying is permanent (:class:`SamGovRejected` for 400 with SAM.gov's message,
:class:`SamGovAuthError` for 401/403); a 429 marks today's budget spent and raises :class:`SamGovRateLimited`
until ``nextAccessTime`` (or the next 00:00 UTC).

The key travels as the ``api_key`` query parameter (SAM.gov accepts nothing else), so it is in every request URL
and in the ``links`` SAM.gov echoes back. No message this module builds contains a URL with the key: errors are
raised ``from None`` with the path and the server's words only (run through :func:`redact`), and httpx's own
request log line is redacted by a filter on the ``httpx`` logger. See docs/samgov.md.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

from app.redis_client import platform_key
from app.sync.errors import (
    QuotaReserved,
    SamGovAuthError,
    SamGovRateLimited,
    SamGovRejected,
    SamGovUnavailable,
)
from app.sync.paging import OffsetMode, PageCursor, PageWalk
from app.sync.quota import Purpose, QuotaBudget, seconds_to_utc_midnight

__all__ = [
    "EntityPage",
    "OpportunityPage",
    "Purpose",
    "QuotaReserved",
    "SamGovAuthError",
    "SamGovClient",
    "SamGovRateLimited",
    "SamGovRejected",
    "SamGovUnavailable",
    "redact",
]

logger = logging.getLogger(__name__)

#: The production API; with it a key is required (:func:`require_key`).
REAL_BASE_URL = "https://api.sam.gov"
OPPORTUNITIES_PATH = "/opportunities/v2/search"
ENTITIES_PATH = "/entity-information/v3/entities"
#: SAM.gov's limits: records per opportunities page, UEIs and records per entities page, entity records per query.
MAX_LIMIT = 1000
MAX_ENTITY_SIZE = 10
MAX_ENTITY_RECORDS = 10_000
#: SAM.gov's date format for ``postedFrom`` / ``postedTo``.
DATE_FORMAT = "%m/%d/%Y"
#: How long a detected offset mode is trusted by every process; a walk in a remembered mode that ends short
#: forgets it at once (SAM.gov may have changed), so the next walk detects it again.
MODE_MEMORY_S = 24 * 3600
#: The format of ``nextAccessTime`` in a 429 body: ``2026-Jun-11 00:00:00+0000 UTC``.
NEXT_ACCESS_FORMAT = "%Y-%b-%d %H:%M:%S%z"

_KEY_IN_TEXT = re.compile(r"(api_key=)[^&\s\"'#]+", re.IGNORECASE)


def redact(text: str, key: str | None = None) -> str:
    """``text`` with every ``api_key=...`` value (and the literal key, if given) replaced by ``***``."""
    text = _KEY_IN_TEXT.sub(r"\1***", text)
    if key:
        text = text.replace(key, "***")
    return text


class _RedactKeyFilter(logging.Filter):
    """httpx logs each request's full URL at INFO ("HTTP Request: GET https://...&api_key=..."): redact it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = redact(record.getMessage())
            record.args = None
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


_filter_lock = threading.Lock()


def _install_log_filter() -> None:
    with _filter_lock:
        for name in ("httpx", "httpcore"):
            log = logging.getLogger(name)
            if not any(isinstance(f, _RedactKeyFilter) for f in log.filters):
                log.addFilter(_RedactKeyFilter())


@dataclass(frozen=True)
class OpportunityPage:
    """One page of an opportunities query, with the notices not already seen earlier in the same walk."""

    #: Raw records as SAM.gov sent them (every field kept), duplicates of earlier pages of this walk removed.
    records: list[dict[str, Any]]
    #: The ``offset`` sent for this page, and the page's position in the walk (0-based).
    offset: int
    index: int
    #: ``totalRecords`` as announced by this page (it grows when notices are posted while paging).
    total_records: int
    #: Requests this page cost, retries included (each one counted against the daily budget).
    requests_spent: int
    #: Records of this page dropped because an earlier page of the walk had them.
    duplicates: int = 0
    #: True on the walk's final page.
    last: bool = False
    #: On the last page: notices announced by ``totalRecords`` that the walk never saw (0 when complete).
    shortfall: int = 0
    #: Where the next page starts, in the offset mode in force (to resume a walk later).
    next_cursor: PageCursor | None = None


@dataclass(frozen=True)
class EntityPage:
    """One page of an entities query (at most 10 records)."""

    records: list[dict[str, Any]]
    #: The UEIs this query asked for (at most 10), empty for a filter-only query.
    ueis: tuple[str, ...]
    page: int
    total_records: int
    requests_spent: int


class SamGovClient:
    """SAM.gov's opportunities and entities APIs for the sync queue (docs/samgov.md)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        quota: QuotaBudget | None,
        timeout_s: float = 30.0,
        page_retries: int = 3,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        offset_mode: OffsetMode = "auto",
        max_connections: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``quota`` None sends without counting (tests and tools only). ``page_retries`` is the number of
        in-place retries of a transiently failing request (so ``1 + page_retries`` attempts in all)."""
        _install_log_filter()
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.quota = quota
        self.page_retries = max(page_retries, 0)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.offset_mode: OffsetMode = offset_mode
        #: "auto" unless a mode was configured: then every walk takes the detected mode from memory, and a walk
        #: that ends short in a remembered mode forgets it (the client may be shared for the process's life).
        self._configured_mode: OffsetMode = offset_mode
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"Accept": "application/json", "User-Agent": "jobs-platform-sync/1"},
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, *, quota: QuotaBudget | None = None) -> SamGovClient:
        """The client of ``SAM_GOV_*`` settings, spending from the shared budget on ``REDIS_URL``.

        Raises :class:`~app.errors.SettingsError` (one line) when the real API is configured without a key.
        """
        from app.settings import get_settings

        settings = get_settings()
        require_key(settings.sam_gov_base_url, settings.sam_gov_api_key)
        key = settings.sam_gov_api_key.get_secret_value() if settings.sam_gov_api_key else ""
        return cls(
            base_url=settings.sam_gov_base_url,
            api_key=key,
            quota=quota if quota is not None else QuotaBudget.from_settings(),
            timeout_s=settings.sam_gov_timeout_s,
            page_retries=settings.sam_gov_page_retries,
            offset_mode=settings.sam_gov_offset_mode,
        )

    @classmethod
    def shared(cls) -> SamGovClient:
        """This process's client of the current settings, built on first use and shared by every thread.

        Sharing keeps connections alive across jobs and lets the offset mode detected by one walk serve every
        later one (no probe request per partition). A change of ``SAM_GOV_*`` settings (tests) builds a new one.
        Do not close it; :func:`close_shared` does at exit.
        """
        from app.settings import get_settings

        settings = get_settings()
        key = (
            settings.sam_gov_base_url,
            settings.sam_gov_api_key.get_secret_value() if settings.sam_gov_api_key else "",
            settings.sam_gov_daily_quota,
            settings.sam_gov_quota_reserve_pct,
            settings.sam_gov_timeout_s,
            settings.sam_gov_page_retries,
            settings.sam_gov_offset_mode,
            settings.redis_url,
        )
        with _shared_lock:
            current = _shared.get("client")
            if current is None or _shared.get("key") != key:
                if current is not None:
                    current.close()
                current = cls.from_settings()
                _shared["client"], _shared["key"] = current, key
            return current  # type: ignore[no-any-return]

    # -- opportunities

    def iter_opportunity_pages(
        self,
        *,
        posted_from: date,
        posted_to: date,
        purpose: Purpose,
        limit: int = MAX_LIMIT,
        start: PageCursor | None = None,
        **filters: str,
    ) -> Iterator[OpportunityPage]:
        """Every notice posted in ``[posted_from, posted_to]`` (at most a year), page by page, each once.

        ``filters`` are SAM.gov's optional parameters (``ptype``, ``ncode``, ``state``...). Notices repeated by
        a later page are dropped from it and counted in :attr:`OpportunityPage.duplicates`. The walk ends as
        :mod:`app.sync.paging` says; an incomplete end is logged and reported in ``shortfall``. A page that
        fails transiently is retried in place; :class:`SamGovUnavailable` after the retries, permanent errors and
        rate limits propagate at once (the pages yielded before stay valid: resume with ``start``).
        A query with no result yields one empty last page (SAM.gov answers 200 with ``totalRecords: 0`` or
        404 "No Data found", both are handled).
        """
        check_range(posted_from, posted_to)
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}")
        # A local mode: the client may be shared by threads, each walk decides with what it read once.
        learned = self._configured_mode == "auto" and start is None
        mode = self._remembered_mode() if learned else self.offset_mode
        if learned:
            self.offset_mode = mode
        remembered = learned and mode != "auto"
        walk = PageWalk(limit=limit, mode=mode, start=start)
        base = {
            **{k: str(v) for k, v in filters.items()},
            "postedFrom": posted_from.strftime(DATE_FORMAT),
            "postedTo": posted_to.strftime(DATE_FORMAT),
            "limit": str(limit),
        }
        while not walk.done:
            offset = walk.offset
            body, spent = self._get_json(OPPORTUNITIES_PATH, {**base, "offset": str(offset)}, purpose)
            records, total = _opportunities(body)
            fresh, duplicates = walk.accept(records, total)
            if walk.mode != "auto" and mode == "auto":
                # Detected once: later walks of this client, and of every process for a day, need no probe.
                mode = self.offset_mode = walk.mode
                self._remember_mode(walk.mode)
            if walk.done and walk.shortfall and remembered:
                # Perhaps SAM.gov changed its mind about offset: forget, the next walk detects again.
                self._forget_mode()
            if walk.done and walk.shortfall:
                logger.warning(
                    "SAM.gov paging ended short",
                    extra={
                        "action": "samgov_paging_short",
                        "total_records": walk.total,
                        "distinct_seen": len(walk.seen),
                        "pages": walk.pages,
                        "offset_mode": walk.mode,
                    },
                )
            yield OpportunityPage(
                records=fresh,
                offset=offset,
                index=walk.pages - 1,
                total_records=walk.total,
                requests_spent=spent,
                duplicates=duplicates,
                last=walk.done,
                shortfall=walk.shortfall if walk.done else 0,
                next_cursor=None if walk.done else walk.cursor,
            )

    def _mode_key(self) -> str:
        return platform_key("samgov", "offset_mode", urlsplit(self.base_url).netloc)

    def _remembered_mode(self) -> OffsetMode:
        """The mode a walk of any process detected today for this server, else "auto" (kept in the budget's
        Redis; without a budget, the mode this client detected last)."""
        if self.quota is None:
            return self.offset_mode
        raw = self.quota.redis.get(self._mode_key())
        mode = raw.decode() if raw else "auto"
        return "page" if mode == "page" else "record" if mode == "record" else "auto"

    def _remember_mode(self, mode: OffsetMode) -> None:
        if self.quota is not None:
            self.quota.redis.set(self._mode_key(), mode, ex=MODE_MEMORY_S)

    def _forget_mode(self) -> None:
        self.offset_mode = "auto"
        if self.quota is not None:
            self.quota.redis.delete(self._mode_key())

    # -- entities

    def iter_entity_pages(
        self,
        ueis: Sequence[str],
        *,
        purpose: Purpose,
        include_sections: Sequence[str] = (),
        **filters: str,
    ) -> Iterator[EntityPage]:
        """The entities of ``ueis``, at most 10 per query (SAM.gov's ``size`` limit), following ``nextLink``.

        An empty ``ueis`` runs one query on ``filters`` alone (``registrationStatus``, ``primaryNaics``...),
        capped at SAM.gov's 10,000 records. Duplicate and blank UEIs are dropped; order is kept.
        """
        wanted = list(dict.fromkeys(u.strip() for u in ueis if u and u.strip()))
        params = {k: str(v) for k, v in filters.items()}
        if include_sections:
            params["includeSections"] = ",".join(include_sections)
        if not wanted:
            if not filters:
                return
            yield from self._entity_query((), params, purpose)
            return
        for start in range(0, len(wanted), MAX_ENTITY_SIZE):
            chunk = tuple(wanted[start : start + MAX_ENTITY_SIZE])
            yield from self._entity_query(chunk, {**params, "ueiSAM": "~".join(chunk)}, purpose)

    def _entity_query(
        self, chunk: tuple[str, ...], params: dict[str, str], purpose: Purpose
    ) -> Iterator[EntityPage]:
        page = 0
        query = {**params, "page": "0", "size": str(MAX_ENTITY_SIZE)}
        while True:
            body, spent = self._get_json(ENTITIES_PATH, query, purpose)
            records, total, next_link = _entities(body)
            yield EntityPage(
                records=records, ueis=chunk, page=page, total_records=total, requests_spent=spent
            )
            following = _next_page(next_link)
            if (
                following is None
                or not records
                or following[0] <= page
                or following[0] * MAX_ENTITY_SIZE >= MAX_ENTITY_RECORDS
            ):
                return
            page, next_params = following
            query = {**next_params, "page": str(page), "size": str(MAX_ENTITY_SIZE)}

    # -- transport

    def _get_json(
        self, path: str, params: Mapping[str, str], purpose: Purpose
    ) -> tuple[dict[str, Any] | None, int]:
        """One logical request: (the JSON body, or None for "No Data found"; requests spent, retries included)."""
        spent = 0
        attempt = 0
        while True:
            if self.quota is not None:
                self.quota.spend(purpose)
            spent += 1
            try:
                return self._attempt(path, params), spent
            except SamGovUnavailable as err:
                if attempt >= self.page_retries:
                    raise
                delay = min(self.backoff_max_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                attempt += 1
                logger.info(
                    "SAM.gov request failed, retrying in place",
                    extra={
                        "action": "samgov_retry",
                        "path": path,
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                        "error": str(err),
                    },
                )
                self._sleep(delay)

    def _attempt(self, path: str, params: Mapping[str, str]) -> dict[str, Any] | None:
        try:
            response = self._http.get(self.base_url + path, params={**params, "api_key": self._key})
            content = response.content
        except httpx.TimeoutException as err:
            raise SamGovUnavailable(f"SAM.gov {path}: timed out ({type(err).__name__})") from None
        except httpx.TransportError as err:
            reason = redact(str(err), self._key) or type(err).__name__
            raise SamGovUnavailable(f"SAM.gov {path}: connection failed ({reason})") from None
        status = response.status_code
        body = _json(content)
        if status == 200:
            if not isinstance(body, dict):
                raise SamGovUnavailable(f"SAM.gov {path}: 200 with a truncated or non-JSON body")
            return body
        message = redact(_message(body) or response.reason_phrase or "", self._key)
        if status == 404 and "no data" in message.lower():
            return None
        if status in (401, 403):
            raise SamGovAuthError(status, message)
        if status == 429:
            wait = retry_after_from(body)
            if self.quota is not None:
                self.quota.exhaust()
            raise SamGovRateLimited(
                wait, f"SAM.gov quota exceeded (429): {message or 'throttled'}; retry after {wait:.0f} s"
            )
        if status >= 500 or status == 408:
            raise SamGovUnavailable(f"SAM.gov {path}: {status} {message}".rstrip())
        raise SamGovRejected(message or f"HTTP {status}", status=status)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SamGovClient(base_url={self.base_url!r})"


_shared_lock = threading.Lock()
_shared: dict[str, Any] = {}


def close_shared() -> None:
    """Close the process's shared client (at exit, or in a test that wants a fresh one)."""
    with _shared_lock:
        client = _shared.pop("client", None)
        _shared.pop("key", None)
    if client is not None:
        client.close()


def require_key(base_url: str, key: Any) -> None:
    """The real API without a key would fail every request with 403: refuse it at start, in one line."""
    from app.errors import SettingsError

    secret = key.get_secret_value() if hasattr(key, "get_secret_value") else key
    if base_url.rstrip("/") == REAL_BASE_URL and not (secret or "").strip():
        raise SettingsError(
            "invalid setting SAM_GOV_API_KEY: is required when SAM_GOV_BASE_URL is the real API "
            f"({REAL_BASE_URL}); `jobs dev` points it at the local simulator instead"
        )


def check_range(posted_from: date, posted_to: date) -> None:
    """SAM.gov's date rules, checked before a request is spent on a query it would reject with 400."""
    if posted_to < posted_from:
        raise SamGovRejected("postedTo is before postedFrom")
    try:
        year_later = posted_from.replace(year=posted_from.year + 1)
    except ValueError:  # 29 February
        year_later = posted_from.replace(year=posted_from.year + 1, day=28)
    if posted_to > year_later:
        raise SamGovRejected("Date range must be 1 year(s) apart")


def retry_after_from(body: Any, now: datetime | None = None) -> float:
    """Seconds until ``nextAccessTime`` of a 429 body; the next 00:00 UTC when it is missing or unreadable."""
    now = now or datetime.now(UTC)
    text = body.get("nextAccessTime") if isinstance(body, dict) else None
    if isinstance(text, str):
        try:
            at = datetime.strptime(text.replace(" UTC", "").strip(), NEXT_ACCESS_FORMAT)
        except ValueError:
            logger.warning("unreadable SAM.gov nextAccessTime", extra={"action": "samgov_next_access"})
        else:
            return max((at - now).total_seconds(), 0.0)
    return seconds_to_utc_midnight(now)


def _json(content: bytes) -> Any:
    """The parsed body, or None when it is empty or not JSON (orjson: a 1,000-record page parses in ~10 ms)."""
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _message(body: Any) -> str:
    """SAM.gov's error text, from whichever of its error shapes the body has."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")
    for field in ("errorMessage", "description", "message", "detail"):
        if body.get(field):
            return str(body[field])
    return ""


def _opportunities(body: dict[str, Any] | None) -> tuple[list[dict[str, Any]], int]:
    if body is None:
        return [], 0
    data = body.get("opportunitiesData")
    if data is not None and not isinstance(data, list):
        raise SamGovUnavailable("SAM.gov answered an opportunitiesData that is not a list")
    records = [r for r in data or [] if isinstance(r, dict)]
    total = body.get("totalRecords")
    return records, int(total) if isinstance(total, int | str) and str(total).isdigit() else len(records)


def _entities(body: dict[str, Any] | None) -> tuple[list[dict[str, Any]], int, str | None]:
    if body is None:
        return [], 0, None
    data = body.get("entityData")
    records = [r for r in data or [] if isinstance(r, dict)] if isinstance(data, list) else []
    total = body.get("totalRecords")
    links = body.get("links")
    next_link = links.get("nextLink") if isinstance(links, dict) else None
    count = int(total) if isinstance(total, int | str) and str(total).isdigit() else len(records)
    return records, count, next_link if isinstance(next_link, str) and next_link else None


def _next_page(link: str | None) -> tuple[int, dict[str, str]] | None:
    """The page number and the query of ``nextLink``, without its ``api_key`` (ours is added per request).

    Only the query is taken: the request goes to our own base URL, whatever host the link names.
    """
    if not link:
        return None
    params = {k: v for k, v in parse_qsl(urlsplit(link).query) if k not in ("api_key", "page", "size")}
    page = dict(parse_qsl(urlsplit(link).query)).get("page", "")
    return (int(page), params) if page.isdigit() else None
