"""A SAM.gov simulator: a real HTTP server on 127.0.0.1 that behaves as docs/samgov.md says the APIs do.

It serves ``GET /opportunities/v2/search`` (also under ``/prod``) and ``GET /entity-information/v3|v4/entities``
from a deterministic :class:`~app.testing.samgov_data.SamGovDataset`, with SAM.gov's validation (400 bodies in
its words), key check (403, or 401 with ``auth_status=401``), daily quota (429 with ``nextAccessTime`` in the
body and no ``Retry-After``), both meanings of ``offset`` (``offset_mode``), both ways of saying "no result"
(``empty_mode``: 200 with ``totalRecords: 0`` or 404 "No Data found"), and entity paging through ``nextLink``
with ``size`` at most 10. Scripted faults play on chosen requests: any status, a 429 with a chosen
``nextAccessTime``, a reset connection, a slow answer, a truncated body; and notices can be amended or posted
while a client is paging. Every API request is counted (:attr:`SamGovSimulator.requests`).

Latency reuses the SendGrid simulator's :class:`~app.testing.sendgrid_server.Latency` (log-normal, seeded).

From Python: ``with SamGovSimulator() as sam: ... sam.url`` (tests use the ``samgov_server`` fixture of
tests/support/samgov.py). Standalone, for ``jobs dev``::

    python -m app.testing.samgov_server --port 8026 [--size 3000 --end today --latency-p50-ms 300]

Standalone, ``GET /_simulator/stats`` and ``POST /_simulator/reset``, ``/_simulator/config``,
``/_simulator/faults``, ``/_simulator/amend`` and ``/_simulator/post`` drive the same state over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import click
import orjson

from app.sync.client import ENTITIES_PATH, OPPORTUNITIES_PATH
from app.testing.http_server import (
    BackgroundServer,
    SimulatorHTTPServer,
    reset_connection,
    serve_until_interrupted,
)
from app.testing.samgov_data import NOTICE_TYPES, SamGovDataset
from app.testing.sendgrid_server import Latency

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "sam-simulator-key"
#: Paths served for opportunities (SAM.gov answers under both) and entities (v3 and v4 share a shape).
OPPORTUNITY_PATHS = frozenset({OPPORTUNITIES_PATH, "/prod" + OPPORTUNITIES_PATH})
ENTITY_PATHS = frozenset({ENTITIES_PATH, ENTITIES_PATH.replace("/v3/", "/v4/")})
MAX_ENTITY_RECORDS = 10_000

OffsetMode = Literal["page", "record"]
EmptyMode = Literal["200", "404"]
FaultKind = Literal["status", "rate_limited", "slow", "reset", "truncated"]
Api = Literal["opportunities", "entities"]

_TYPE_BY_CODE = dict(NOTICE_TYPES)


def next_access_text(at: datetime) -> str:
    """SAM.gov's spelling of a time in a 429 body: ``2026-Jun-11 00:00:00+0000 UTC``."""
    return at.astimezone(UTC).strftime("%Y-%b-%d %H:%M:%S+0000 UTC")


def _next_midnight(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour. Build one with the class methods."""

    kind: FaultKind
    status: int = 0
    delay_s: float = 0.0
    #: For ``rate_limited``: seconds from now to ``nextAccessTime``; None leaves the field out of the body.
    next_access_in_s: float | None = None
    #: For ``truncated``: True sends a Content-Length matching the cut body (a 200 whose JSON is incomplete);
    #: False announces the whole length and closes early (the client sees an incomplete read).
    honest_length: bool = True

    @classmethod
    def error(cls, status: int) -> Fault:
        """Answer ``status`` with a SAM.gov-shaped error body (500, 502, 503, 504, 400...)."""
        return cls("status", status=status)

    @classmethod
    def rate_limited(cls, next_access_in_s: float | None = 2.0) -> Fault:
        """429 with ``nextAccessTime`` this far ahead (rounded up to the second), or without it (None)."""
        return cls("rate_limited", status=429, next_access_in_s=next_access_in_s)

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """Wait ``delay_s`` before answering normally (a client timeout shorter than this fires)."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def reset(cls) -> Fault:
        """Reset the connection (TCP RST) without answering."""
        return cls("reset")

    @classmethod
    def truncated(cls, *, honest_length: bool = True) -> Fault:
        """Answer 200 with only the first half of the JSON body."""
        return cls("truncated", honest_length=honest_length)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "delay_s": self.delay_s,
            "next_access_in_s": self.next_access_in_s,
            "honest_length": self.honest_length,
        }


@dataclass(frozen=True)
class RequestRecord:
    """One API request: 1-based number, which API, its query (without ``api_key``), the status (0: none)."""

    number: int
    api: Api | None
    params: dict[str, str]
    status: int = -1
    fault: FaultKind | None = None

    @property
    def offset(self) -> int | None:
        value = self.params.get("offset")
        return int(value) if value and value.isdigit() else None


@dataclass
class _Script:
    fault: Fault
    times: int
    api: Api | None
    when: dict[str, str]

    def matches(self, api: Api | None, params: dict[str, str]) -> bool:
        if self.api is not None and api != self.api:
            return False
        return all(params.get(k) == v for k, v in self.when.items())


@dataclass
class _PostPlan:
    """Post ``count`` notices after ``after`` more opportunities requests (notices "posted while paging")."""

    after: int
    count: int
    posted: date | None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RequestRecord] = field(default_factory=list)
    by_number: dict[int, Fault] = field(default_factory=dict)
    queue: list[_Script] = field(default_factory=list)
    plans: list[_PostPlan] = field(default_factory=list)
    used_by_day: dict[str, int] = field(default_factory=dict)
    connections_opened: int = 0


class SamGovSimulator(BackgroundServer["_Server"]):
    """The simulator; a context manager that starts on enter and stops on exit. ``port=0`` picks a free port."""

    def __init__(
        self,
        *,
        dataset: SamGovDataset | None = None,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        offset_mode: OffsetMode = "record",
        empty_mode: EmptyMode = "200",
        auth_status: int = 403,
        daily_quota: int | None = None,
        latency: Latency | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.dataset = dataset or SamGovDataset()
        self.api_key = api_key
        self.offset_mode: OffsetMode = offset_mode
        self.empty_mode: EmptyMode = empty_mode
        self.auth_status = auth_status
        #: Requests per UTC day before 429 (None: unlimited).
        self.daily_quota = daily_quota
        self.latency = latency or Latency()
        self.clock = clock
        self._rng = random.Random(self.latency.seed)
        self._state = _State()
        super().__init__(_Server((host, port), _Handler), thread_name="samgov-simulator")
        self._server.simulator = self

    @property
    def url(self) -> str:
        """The value for ``SAM_GOV_BASE_URL`` (no trailing slash)."""
        return self.base_url

    # -- control

    def configure(
        self,
        *,
        offset_mode: OffsetMode | None = None,
        empty_mode: EmptyMode | None = None,
        auth_status: int | None = None,
        daily_quota: int | Literal["keep"] | None = "keep",
        latency: Latency | None = None,
    ) -> None:
        """Change behaviour switches while running (the next request sees them)."""
        with self._state.lock:
            if offset_mode is not None:
                self.offset_mode = offset_mode
            if empty_mode is not None:
                self.empty_mode = empty_mode
            if auth_status is not None:
                self.auth_status = auth_status
            if daily_quota != "keep":
                self.daily_quota = daily_quota
            if latency is not None:
                self.latency = latency

    def script(
        self,
        fault: Fault,
        *,
        times: int = 1,
        on_request: int | None = None,
        api: Api | None = None,
        when: dict[str, str] | None = None,
    ) -> None:
        """Play ``fault`` on API request number ``on_request`` (1-based, counted since the start or reset), or
        else on the next ``times`` requests to ``api`` whose query has every ``when`` parameter (e.g.
        ``{"offset": "2000"}``)."""
        with self._state.lock:
            if on_request is not None:
                self._state.by_number[on_request] = fault
            else:
                self._state.queue.append(_Script(fault, times, api, dict(when or {})))

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.by_number.clear()
            self._state.queue.clear()

    def amend(self, notice: str | int, **changes: Any) -> dict[str, Any]:
        """Change fields of a notice, keeping its ``noticeId`` (an amended notice)."""
        with self._state.lock:
            return self.dataset.amend(notice, **changes)

    def post(self, posted: date, count: int = 1) -> list[str]:
        """Post ``count`` new notices dated ``posted`` now; they are listed first and shift later pages."""
        with self._state.lock:
            return self.dataset.post(posted, count)

    def post_while_paging(
        self, count: int = 1, *, after_requests: int = 1, posted: date | None = None
    ) -> None:
        """After ``after_requests`` more opportunities requests, post ``count`` notices dated ``posted`` (by
        default the ``postedFrom`` of the request that triggers it), as if posted while a client pages."""
        with self._state.lock:
            self._state.plans.append(_PostPlan(after_requests, count, posted))

    def reset(self) -> None:
        """Forget requests, faults, quota use and plans (the data set, amendments included, stays)."""
        with self._state.lock:
            self._state = _State()

    # -- inspection

    @property
    def requests(self) -> list[RequestRecord]:
        with self._state.lock:
            return list(self._state.requests)

    def count(self, *, api: Api | None = None, status: int | None = None) -> int:
        """API requests seen (``api`` and ``status`` narrow it; status 0 is a connection dropped unanswered)."""
        with self._state.lock:
            return sum(
                1
                for r in self._state.requests
                if (api is None or r.api == api) and (status is None or r.status == status)
            )

    @property
    def connections_opened(self) -> int:
        with self._state.lock:
            return self._state.connections_opened

    def stats(self) -> dict[str, Any]:
        with self._state.lock:
            statuses: dict[str, int] = {}
            for r in self._state.requests:
                statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
            return {
                "requests": len(self._state.requests),
                "statuses": statuses,
                "connections_opened": self._state.connections_opened,
                "offset_mode": self.offset_mode,
                "empty_mode": self.empty_mode,
                "daily_quota": self.daily_quota,
                "notices": self.dataset.size + len(self.dataset.posted),
                "entities": self.dataset.entity_count,
            }

    # -- used by the handler

    def _begin(self, api: Api | None, params: dict[str, str]) -> tuple[int, Fault | None]:
        with self._state.lock:
            number = len(self._state.requests) + 1
            fault = self._state.by_number.pop(number, None)
            if fault is None:
                for entry in self._state.queue:
                    if entry.matches(api, params):
                        entry.times -= 1
                        if entry.times <= 0:
                            self._state.queue.remove(entry)
                        fault = entry.fault
                        break
            self._state.requests.append(
                RequestRecord(number, api, params, fault=fault.kind if fault else None)
            )
            return number, fault

    def _finish(self, number: int, status: int, fault: Fault | None) -> None:
        with self._state.lock:
            index = number - 1
            if index < len(self._state.requests):
                record = self._state.requests[index]
                self._state.requests[index] = RequestRecord(
                    record.number, record.api, record.params, status, fault.kind if fault else None
                )

    def _spend_quota(self) -> bool:
        """Count one authenticated request against today's quota; False when it is already spent."""
        with self._state.lock:
            if self.daily_quota is None:
                return True
            day = self.clock().astimezone(UTC).date().isoformat()
            used = self._state.used_by_day.get(day, 0)
            if used >= self.daily_quota:
                return False
            self._state.used_by_day[day] = used + 1
            return True

    def _run_plans(self, posted_from: date) -> None:
        with self._state.lock:
            for plan in list(self._state.plans):
                plan.after -= 1
                if plan.after <= 0:
                    self._state.plans.remove(plan)
                    self.dataset.post(plan.posted or posted_from, plan.count)

    def _hold(self) -> None:
        if self.latency.p50_s <= 0:
            return
        with self._state.lock:
            delay = self._rng.lognormvariate(self.latency.mu, self.latency.sigma)
        self._stopping.wait(delay)

    def _count_connection(self) -> None:
        with self._state.lock:
            self._state.connections_opened += 1


class _Server(SimulatorHTTPServer):
    simulator: SamGovSimulator


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _parse_date(value: str) -> date:
    try:
        return datetime.strptime(value, "%m/%d/%Y").date()
    except ValueError:
        raise _BadRequest("Invalid Date Entered. Expected date format is MM/dd/yyyy") from None


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise _BadRequest(f"Invalid {name}. Please provide valid input.") from None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.simulator._count_connection()

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries the api_key: never log it, even at DEBUG.
        pass

    # -- routes

    def do_GET(self) -> None:
        sim = self.server.simulator
        split = urlsplit(self.path)
        path = split.path.rstrip("/")
        raw = dict(parse_qsl(split.query, keep_blank_values=True))
        if path == "/_simulator/stats":
            self._reply(200, sim.stats())
            return
        api: Api | None = (
            "opportunities" if path in OPPORTUNITY_PATHS else "entities" if path in ENTITY_PATHS else None
        )
        key = raw.pop("api_key", None)
        number, fault = sim._begin(api, raw)
        if api is None:
            self._answer(number, None, 404, {"error": {"code": "404", "message": "Not Found"}})
            return
        sim._hold()
        if fault is not None and fault.kind == "slow":
            sim._stopping.wait(fault.delay_s)
        elif fault is not None and self._play(number, fault):
            return
        if key != sim.api_key:
            self._answer(
                number,
                fault,
                sim.auth_status,
                {
                    "error": {
                        "code": "API_KEY_INVALID",
                        "message": "An invalid api_key was supplied. Get one at https://api.data.gov:443",
                    }
                },
            )
            return
        if not sim._spend_quota():
            self._answer(number, fault, 429, _throttled(_next_midnight(sim.clock())))
            return
        try:
            if api == "opportunities":
                status, payload = self._opportunities(sim, raw, key)
            else:
                status, payload = self._entities(sim, raw, key)
        except _BadRequest as err:
            status, payload = 400, {"errorCode": "400", "errorMessage": err.message}
        if fault is not None and fault.kind == "truncated" and status == 200:
            self._truncate(number, fault, payload)
            return
        self._answer(number, fault, status, payload)

    def do_POST(self) -> None:
        sim = self.server.simulator
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if path == "/_simulator/reset":
            sim.reset()
            self._reply(204)
        elif path == "/_simulator/config":
            sim.configure(
                **{k: v for k, v in body.items() if k in ("offset_mode", "empty_mode", "auth_status")}
            )
            if "daily_quota" in body:
                sim.configure(daily_quota=body["daily_quota"])
            self._reply(200, sim.stats())
        elif path == "/_simulator/faults":
            fault = Fault(
                kind=body["kind"],
                status=int(body.get("status", 0)),
                delay_s=float(body.get("delay_s", 0.0)),
                next_access_in_s=body.get("next_access_in_s", 2.0),
                honest_length=bool(body.get("honest_length", True)),
            )
            sim.script(
                fault,
                times=int(body.get("times", 1)),
                on_request=body.get("on_request"),
                api=body.get("api"),
                when=body.get("when"),
            )
            self._reply(200, fault.as_json())
        elif path == "/_simulator/amend":
            self._reply(200, sim.amend(body["notice"], **body.get("changes", {})))
        elif path == "/_simulator/post":
            self._reply(
                200, {"noticeIds": sim.post(date.fromisoformat(body["posted"]), int(body.get("count", 1)))}
            )
        else:
            self._reply(404, {"error": {"code": "404", "message": "Not Found"}})

    # -- the APIs

    def _opportunities(self, sim: SamGovSimulator, params: dict[str, str], key: str) -> tuple[int, Any]:
        if not params.get("postedFrom") or not params.get("postedTo"):
            raise _BadRequest("PostedFrom and PostedTo are mandatory")
        posted_from, posted_to = _parse_date(params["postedFrom"]), _parse_date(params["postedTo"])
        try:
            year_later = posted_from.replace(year=posted_from.year + 1)
        except ValueError:
            year_later = posted_from.replace(year=posted_from.year + 1, day=28)
        if posted_to > year_later or posted_to < posted_from:
            raise _BadRequest("Date range must be 1 year(s) apart")
        limit = _int_param(params, "limit", 1)
        if not 0 <= limit <= 1000:
            raise _BadRequest("Limit valid range is 0-1000. Please provide valid input.")
        offset = _int_param(params, "offset", 0)
        if offset < 0:
            raise _BadRequest("Offset must be a positive number.")
        with sim._state.lock:
            indices = sim.dataset.query(posted_from, posted_to)
            filters = _notice_filters(params)
            records: list[Any]
            if filters:
                records_all = [sim.dataset.notice(i) for i in indices]
                matching = [r for r in records_all if all(f(r) for f in filters)]
                total = len(matching)
                start = offset * limit if sim.offset_mode == "page" else offset
                records = matching[start : start + limit]
            else:
                total = len(indices)
                start = offset * limit if sim.offset_mode == "page" else offset
                records = [orjson.Fragment(sim.dataset.encoded(i)) for i in indices[start : start + limit]]
        sim._run_plans(posted_from)
        if total == 0 and sim.empty_mode == "404":
            return 404, {"error": {"code": "404", "message": "No Data found"}}
        query = urlencode({**params, "api_key": key})
        return 200, {
            "totalRecords": total,
            "limit": limit,
            "offset": offset,
            "opportunitiesData": records,
            "links": [{"rel": "self", "href": f"https://api.sam.gov{OPPORTUNITIES_PATH}?{query}"}],
        }

    def _entities(self, sim: SamGovSimulator, params: dict[str, str], key: str) -> tuple[int, Any]:
        size = _int_param(params, "size", 10)
        page = _int_param(params, "page", 0)
        if size > 10:
            raise _BadRequest("Size Cannot Exceed 10 Records")
        if size < 1 or page < 0:
            raise _BadRequest("Invalid page or size. Please provide valid input.")
        dataset = sim.dataset
        wanted = [u for u in params.get("ueiSAM", "").replace("~", ",").split(",") if u]
        if wanted:
            found = [dataset.entity_of_uei(u) for u in wanted]
            entities = [e for e in found if e is not None]
        else:
            entities = list(dataset.iter_entities())
        status = params.get("registrationStatus")
        naics = params.get("primaryNaics")
        records = [dataset.entity(e) for e in entities]
        if status:
            records = [
                r for r in records if r["entityRegistration"]["registrationStatus"][0] == status.upper()[0]
            ]
        if naics:
            records = [r for r in records if r["assertions"]["goodsAndServices"]["primaryNaics"] == naics]
        total = len(records)
        if total == 0 and sim.empty_mode == "404":
            return 404, {"error": {"code": "404", "message": "No Data found"}}
        start = page * size
        chunk = records[start : start + size] if start < MAX_ENTITY_RECORDS else []
        base = f"https://api.sam.gov{ENTITIES_PATH}"
        links = {"selfLink": f"{base}?{urlencode({**params, 'api_key': key})}"}
        if start + size < min(total, MAX_ENTITY_RECORDS):
            links["nextLink"] = f"{base}?{urlencode({**params, 'page': str(page + 1), 'api_key': key})}"
        return 200, {"totalRecords": total, "entityData": chunk, "links": links}

    # -- faults and responses

    def _play(self, number: int, fault: Fault) -> bool:
        """Play a fault that replaces the answer; False for those that act on the normal answer."""
        if fault.kind == "status":
            payload: Any = (
                {"errorCode": str(fault.status), "errorMessage": f"simulated {fault.status}"}
                if fault.status < 500
                else {"error": {"code": str(fault.status), "message": "Service Unavailable"}}
            )
            self._answer(number, fault, fault.status, payload)
            return True
        if fault.kind == "rate_limited":
            now = self.server.simulator.clock()
            at = (
                None
                if fault.next_access_in_s is None
                else (now + timedelta(seconds=fault.next_access_in_s)).replace(microsecond=0)
                + timedelta(seconds=1)
            )
            self._answer(number, fault, 429, _throttled(at))
            return True
        if fault.kind == "reset":
            self.server.simulator._finish(number, 0, fault)
            self.close_connection = True
            reset_connection(self.connection)
            return True
        return False

    def _truncate(self, number: int, fault: Fault, payload: Any) -> None:
        data = orjson.dumps(payload)
        cut = data[: len(data) // 2]
        self.server.simulator._finish(number, 200, fault)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(cut) if fault.honest_length else len(data)))
        self.end_headers()
        self.wfile.write(cut)
        self.close_connection = True
        if not fault.honest_length:
            with contextlib.suppress(OSError):
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)

    def _answer(self, number: int, fault: Fault | None, status: int, payload: Any) -> None:
        self.server.simulator._finish(number, status, fault)
        self._reply(status, payload)

    def _reply(self, status: int, payload: Any = None) -> None:
        data = b"" if payload is None else orjson.dumps(payload)
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)


def _throttled(at: datetime | None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": "900804", "message": "Message throttled out"}
    if at is None:
        body["description"] = "You have exceeded your quota."
    else:
        text = next_access_text(at)
        body["description"] = f"You have exceeded your quota. You can access API after {text}"
        body["nextAccessTime"] = text
    return body


def _notice_filters(params: dict[str, str]) -> list[Callable[[dict[str, Any]], bool]]:
    """SAM.gov's optional opportunity filters, as predicates over a record."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    if params.get("ptype"):
        names = {_TYPE_BY_CODE.get(code.strip(), "") for code in params["ptype"].split(",")}
        checks.append(lambda r: r.get("type") in names)
    if params.get("ncode"):
        ncode = params["ncode"]
        checks.append(lambda r: r.get("naicsCode") == ncode or ncode in (r.get("naicsCodes") or []))
    if params.get("typeOfSetAside"):
        aside = params["typeOfSetAside"]
        checks.append(lambda r: r.get("typeOfSetAside") == aside)
    if params.get("state"):
        state = params["state"]
        checks.append(lambda r: ((r.get("placeOfPerformance") or {}).get("state") or {}).get("code") == state)
    if params.get("solnum"):
        solnum = params["solnum"]
        checks.append(lambda r: r.get("solicitationNumber") == solnum)
    if params.get("noticeid"):
        notice_id = params["noticeid"]
        checks.append(lambda r: r.get("noticeId") == notice_id)
    if params.get("title"):
        title = params["title"].lower()
        checks.append(lambda r: title in str(r.get("title") or "").lower())
    if params.get("organizationCode"):
        code = params["organizationCode"]
        checks.append(lambda r: code in str(r.get("fullParentPathCode") or "").split("."))
    return checks


#: The key ``jobs dev`` gives the platform and its simulator when no SAM.gov key is set.
DEV_API_KEY = DEFAULT_API_KEY


def dev_process(env: dict[str, str]) -> str | None:
    """For ``jobs dev``: without SAM.gov settings, point ``env`` at a local simulator and return the command
    that runs it (None when a key or a base URL is set: the user's own SAM.gov is used)."""
    if env.get("SAM_GOV_API_KEY") or env.get("SAM_GOV_BASE_URL"):
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env["SAM_GOV_BASE_URL"] = f"http://127.0.0.1:{port}"
    env["SAM_GOV_API_KEY"] = DEV_API_KEY
    return f"exec python -m app.testing.samgov_server --port {port} --end today"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--api-key",
    envvar="SAM_GOV_API_KEY",
    default=DEFAULT_API_KEY,
    show_default=False,
    help="The key clients must send (default: SAM_GOV_API_KEY, else the simulator's own).",
)
@click.option("--size", default=3000, show_default=True, help="Notices in the data set.")
@click.option("--days", default=120, show_default=True, help="Days the notices are spread over.")
@click.option("--end", default="today", show_default=True, help="Last posted date (YYYY-MM-DD or today).")
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--cache-records", default=0, show_default=True, help="Encoded notices kept in memory (~1.3 kB each)."
)
@click.option("--offset-mode", type=click.Choice(["page", "record"]), default="record", show_default=True)
@click.option("--empty-mode", type=click.Choice(["200", "404"]), default="200", show_default=True)
@click.option(
    "--daily-quota", type=int, default=None, help="Requests per UTC day before 429 (default: none)."
)
@click.option("--latency-p50-ms", default=0.0, show_default=True, help="Median delay of an answer (0: none).")
@click.option(
    "--latency-p99-ms", default=None, type=float, help="99th percentile of that delay (log-normal)."
)
def main(
    host: str,
    port: int,
    api_key: str,
    size: int,
    days: int,
    end: str,
    seed: int,
    cache_records: int,
    offset_mode: OffsetMode,
    empty_mode: EmptyMode,
    daily_quota: int | None,
    latency_p50_ms: float,
    latency_p99_ms: float | None,
) -> None:
    """Run the SAM.gov simulator until interrupted; prints its URL (the SAM_GOV_BASE_URL to use)."""
    last = datetime.now(UTC).date() if end == "today" else date.fromisoformat(end)
    p99_ms = latency_p50_ms if latency_p99_ms is None else latency_p99_ms
    simulator = SamGovSimulator(
        dataset=SamGovDataset(size=size, seed=seed, end=last, days=days, cache_records=cache_records),
        api_key=api_key,
        host=host,
        port=port,
        offset_mode=offset_mode,
        empty_mode=empty_mode,
        daily_quota=daily_quota,
        latency=Latency(p50_s=latency_p50_ms / 1000, p99_s=p99_ms / 1000),
    )
    serve_until_interrupted(simulator, f"SAM.gov simulator listening on {simulator.url}")


if __name__ == "__main__":
    main()
