"""A SendGrid v3 Mail Send simulator: a real HTTP server on 127.0.0.1 that behaves as docs/sendgrid.md says.

It validates requests (each breach a 400 naming the field, :mod:`app.testing.sendgrid_rules`), answers 401 to a
wrong key, 403 to an unverified sender (when a list of verified senders is given), 413 over 30 MB and 202 with
``X-Message-Id`` otherwise. It records what it accepted, counts responses by status, and plays scripted faults
on chosen requests: 429 with ``X-RateLimit-*`` headers, any status (500, 503, 400...), a slow answer, a reset
connection, and the nastiest one, a message accepted and recorded whose response never arrives.

Production latency is a setting (:class:`Latency`): each Mail Send is answered after a delay drawn from a
log-normal distribution given by its median and 99th percentile (SendGrid answers in 100–600 ms), from a seeded
generator. Each connection is served by a thread of its own, so a delayed answer holds only its connection;
the listen backlog takes a burst of new connections from a worker with many threads. The default is no delay,
for the tests. See docs/sendgrid.md.

Use it from Python (``with SendGridSimulator() as sg: ... sg.url``) or standalone for ``jobs dev``::

    python -m app.testing.sendgrid_server --port 8025 [--latency-p50-ms 150 --latency-p99-ms 600]

Standalone, ``GET /_simulator/stats``, ``GET /_simulator/messages`` and ``POST /_simulator/reset`` expose the
same state over HTTP.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import logging
import math
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

import click

from app.testing import sendgrid_rules
from app.testing.http_server import (
    BackgroundServer,
    SimulatorHTTPServer,
    reset_connection,
    serve_until_interrupted,
)

logger = logging.getLogger(__name__)

MAIL_SEND_PATH = "/v3/mail/send"
DEFAULT_API_KEY = "SG.simulator-key"
#: Messages kept for inspection (oldest dropped first), so a long benchmark does not grow without bound.
DEFAULT_KEEP = 10_000
_CHUNK = 1024 * 1024

FaultKind = Literal["status", "rate_limited", "slow", "reset", "accept_then_drop"]
#: The standard normal's 99th percentile: a log-normal's p99 is ``exp(mu + Z_99 * sigma)``.
Z_99 = 2.3263478740408408


@dataclass(frozen=True)
class Latency:
    """How long the simulator takes to answer a Mail Send: log-normal with this median and 99th percentile.

    ``p50_s == p99_s`` is a constant delay; ``Latency()`` none at all. ``seed`` makes the sequence of delays
    repeatable (which request gets which one still depends on the order requests arrive in).
    """

    p50_s: float = 0.0
    p99_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.p50_s < 0 or self.p99_s < self.p50_s:
            raise ValueError("latency needs 0 <= p50 <= p99")

    @property
    def mu(self) -> float:
        return math.log(self.p50_s) if self.p50_s > 0 else -math.inf

    @property
    def sigma(self) -> float:
        return math.log(self.p99_s / self.p50_s) / Z_99 if self.p50_s > 0 else 0.0

    @property
    def mean_s(self) -> float:
        """The distribution's mean (``exp(mu + sigma^2/2)``): what a concurrency bound divides by."""
        return math.exp(self.mu + self.sigma**2 / 2) if self.p50_s > 0 else 0.0


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour. Build one with the class methods."""

    kind: FaultKind
    status: int = 0
    delay_s: float = 0.0
    reset_in_s: float = 0.0
    message: str = ""

    @classmethod
    def error(cls, status: int, message: str = "") -> Fault:
        """Answer ``status`` with a SendGrid-shaped error body (500, 503, 400, 403...)."""
        return cls("status", status=status, message=message or f"simulated {status}")

    @classmethod
    def rate_limited(cls, reset_in_s: float = 2.0) -> Fault:
        """429 with ``X-RateLimit-Reset`` ``reset_in_s`` seconds from now (rounded up to the epoch second)."""
        return cls("rate_limited", status=429, reset_in_s=reset_in_s)

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """Wait ``delay_s`` before handling the request normally (a client timeout shorter than this fires)."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def reset(cls) -> Fault:
        """Reset the connection (TCP RST) without answering; nothing is accepted."""
        return cls("reset")

    @classmethod
    def accept_then_drop(cls, delay_s: float = 0.0) -> Fault:
        """Accept and record the message, wait ``delay_s``, then drop the connection without a response."""
        return cls("accept_then_drop", delay_s=delay_s)


@dataclass(frozen=True)
class ReceivedAttachment:
    filename: str
    type: str
    content: bytes
    disposition: str


@dataclass(frozen=True)
class AcceptedMessage:
    """One accepted request, decoded for assertions."""

    message_id: str
    received_at: float
    body: dict[str, Any]
    recipients: tuple[str, ...]
    subject: str
    text: str | None
    html: str | None
    attachments: tuple[ReceivedAttachment, ...]
    custom_args: dict[str, str]
    headers: dict[str, str]
    categories: tuple[str, ...]

    @classmethod
    def decode(cls, message_id: str, body: dict[str, Any]) -> AcceptedMessage:
        personalizations = body.get("personalizations") or [{}]
        first = personalizations[0]
        content = {block.get("type"): block.get("value") for block in body.get("content") or []}
        return cls(
            message_id=message_id,
            received_at=time.time(),
            body=body,
            recipients=tuple(
                a["email"]
                for p in personalizations
                for kind in ("to", "cc", "bcc")
                for a in p.get(kind) or []
            ),
            subject=first.get("subject") or body.get("subject") or "",
            text=content.get("text/plain"),
            html=content.get("text/html"),
            attachments=tuple(
                ReceivedAttachment(
                    filename=a.get("filename", ""),
                    type=a.get("type", ""),
                    content=base64.b64decode(a.get("content", "")),
                    disposition=a.get("disposition", "attachment"),
                )
                for a in body.get("attachments") or []
            ),
            custom_args={**(body.get("custom_args") or {}), **(first.get("custom_args") or {})},
            headers={**(body.get("headers") or {}), **(first.get("headers") or {})},
            categories=tuple(body.get("categories") or ()),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "received_at": self.received_at,
            "recipients": list(self.recipients),
            "subject": self.subject,
            "custom_args": self.custom_args,
            "attachments": [a.filename for a in self.attachments],
        }


@dataclass(frozen=True)
class RequestRecord:
    """What happened to one request: its 1-based number, when, the status answered (0: none) and the fault."""

    number: int
    at: float
    status: int
    fault: FaultKind | None
    #: Headers of the answer (e.g. ``X-RateLimit-Reset``).
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds the answer was held back by the latency setting.
    delay_s: float = 0.0


@dataclass
class _Script:
    fault: Fault
    times: int
    match: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class _State:
    keep: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RequestRecord] = field(default_factory=list)
    messages: collections.deque[AcceptedMessage] = field(default_factory=collections.deque)
    accepted_total: int = 0
    by_number: dict[int, Fault] = field(default_factory=dict)
    queue: list[_Script] = field(default_factory=list)
    connections_opened: int = 0
    connections_closed: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class SendGridSimulator(BackgroundServer["_Server"]):
    """The simulator; a context manager that starts on enter and stops on exit. ``port=0`` picks a free port."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        verified_senders: frozenset[str] | None = None,
        keep: int = DEFAULT_KEEP,
        idle_timeout_s: float | None = None,
        latency: Latency | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency = latency or Latency()
        self._rng = random.Random(self.latency.seed)
        self.verified_senders = verified_senders
        #: Close a kept-alive connection idle this long, as real servers do (None: keep it until the client goes).
        self.idle_timeout_s = idle_timeout_s
        self._state = _State(keep=keep)
        super().__init__(_Server((host, port), _Handler), thread_name="sendgrid-simulator")
        self._server.simulator = self

    @property
    def url(self) -> str:
        """The value for ``SENDGRID_API_HOST`` (no trailing slash)."""
        return self.base_url

    # -- scripting

    def script(
        self,
        fault: Fault,
        *,
        times: int = 1,
        on_request: int | None = None,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Play ``fault`` on request number ``on_request`` (1-based), or else on the next ``times`` requests
        (whose body satisfies ``match``, when given)."""
        with self._state.lock:
            if on_request is not None:
                self._state.by_number[on_request] = fault
            else:
                self._state.queue.append(_Script(fault, times, match))

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.by_number.clear()
            self._state.queue.clear()

    def reset(self) -> None:
        """Forget messages, counts and faults."""
        with self._state.lock:
            keep = self._state.keep
            self._state = _State(keep=keep)

    # -- inspection

    @property
    def messages(self) -> list[AcceptedMessage]:
        with self._state.lock:
            return list(self._state.messages)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def accepted_total(self) -> int:
        """Messages accepted since the start (including those dropped from :attr:`messages` by ``keep``)."""
        with self._state.lock:
            return self._state.accepted_total

    def count(self, status: int | None = None) -> int:
        """Requests seen, or those answered with ``status`` (0: no answer, the connection was dropped)."""
        with self._state.lock:
            return sum(1 for r in self._state.requests if status is None or r.status == status)

    def messages_to(self, address: str) -> list[AcceptedMessage]:
        return [m for m in self.messages if address in m.recipients]

    def stats(self) -> dict[str, Any]:
        with self._state.lock:
            statuses = collections.Counter(str(r.status) for r in self._state.requests)
            return {
                "requests": len(self._state.requests),
                "accepted": self._state.accepted_total,
                "statuses": dict(statuses),
                "connections_opened": self._state.connections_opened,
                "connections_closed": self._state.connections_closed,
                "max_in_flight": self._state.max_in_flight,
            }

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since the start or the last reset (HTTP/1.1 keep-alive reuses them)."""
        with self._state.lock:
            return self._state.connections_opened

    @property
    def connections_closed(self) -> int:
        with self._state.lock:
            return self._state.connections_closed

    @property
    def max_in_flight(self) -> int:
        """The most Mail Send requests handled at the same time since the start or the last reset."""
        with self._state.lock:
            return self._state.max_in_flight

    # -- used by the handler

    def _count_connection(self, *, opened: bool) -> None:
        with self._state.lock:
            if opened:
                self._state.connections_opened += 1
            else:
                self._state.connections_closed += 1

    def _next_number(self) -> int:
        with self._state.lock:
            number = len(self._state.requests) + 1
            self._state.requests.append(RequestRecord(number, time.time(), -1, None))
            self._state.in_flight += 1
            self._state.max_in_flight = max(self._state.max_in_flight, self._state.in_flight)
            return number

    def _done(self) -> None:
        with self._state.lock:
            self._state.in_flight = max(self._state.in_flight - 1, 0)

    def _hold(self, number: int) -> None:
        """Wait out this request's share of the latency setting (only this connection's thread waits)."""
        if self.latency.p50_s <= 0:
            return
        with self._state.lock:
            delay = self._rng.lognormvariate(self.latency.mu, self.latency.sigma)
            index = number - 1
            if index < len(self._state.requests):
                self._state.requests[index] = replace(self._state.requests[index], delay_s=delay)
        self._wait(delay)

    def _fault_for(self, number: int, body: dict[str, Any] | None) -> Fault | None:
        with self._state.lock:
            if number in self._state.by_number:
                return self._state.by_number.pop(number)
            for entry in self._state.queue:
                if entry.match is not None and (body is None or not _safe_match(entry.match, body)):
                    continue
                entry.times -= 1
                if entry.times <= 0:
                    self._state.queue.remove(entry)
                return entry.fault
        return None

    def _finish(
        self, number: int, status: int, fault: Fault | None, headers: dict[str, str] | None = None
    ) -> None:
        with self._state.lock:
            index = number - 1
            if index < len(self._state.requests):
                record = self._state.requests[index]
                self._state.requests[index] = replace(
                    record,
                    at=time.time(),
                    status=status,
                    fault=fault.kind if fault else None,
                    headers=headers or {},
                    delay_s=record.delay_s,
                )

    def _accept(self, body: dict[str, Any]) -> AcceptedMessage:
        message = AcceptedMessage.decode(_new_message_id(), body)
        with self._state.lock:
            self._state.messages.append(message)
            self._state.accepted_total += 1
            while len(self._state.messages) > self._state.keep:
                self._state.messages.popleft()
        return message

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Server(SimulatorHTTPServer):
    simulator: SendGridSimulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # A read that times out while waiting for the next request ends the connection (handle_one_request).
        self.connection.settimeout(self.server.simulator.idle_timeout_s)
        self.server.simulator._count_connection(opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.simulator._count_connection(opened=False)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("simulator: " + format, *args)

    # -- routes

    def do_POST(self) -> None:
        if self.path == "/_simulator/reset":
            self.server.simulator.reset()
            self._reply(204)
        elif self.path.split("?")[0] == MAIL_SEND_PATH:
            self._mail_send()
        else:
            self._reply(404, _errors([("Not found", None)]))

    def do_GET(self) -> None:
        sim = self.server.simulator
        if self.path == "/_simulator/stats":
            self._reply(200, sim.stats())
        elif self.path == "/_simulator/messages":
            self._reply(200, [m.summary() for m in sim.messages])
        else:
            self._reply(404, _errors([("Not found", None)]))

    # -- mail send

    def _mail_send(self) -> None:
        sim = self.server.simulator
        number = sim._next_number()
        try:
            self._mail_send_numbered(sim, number)
        finally:
            sim._done()

    def _mail_send_numbered(self, sim: SendGridSimulator, number: int) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > sendgrid_rules.MAX_REQUEST_BYTES:
            self._drain(length)
            self._answer(
                number,
                None,
                413,
                _errors([("The JSON payload you have included in your request is too large.", None)]),
            )
            return
        raw = self.rfile.read(length)
        sim._hold(number)
        body = _parse(raw)
        fault = sim._fault_for(number, body)
        if fault is not None and fault.kind == "slow":
            sim._wait(fault.delay_s)
        elif fault is not None and self._play(number, fault):
            return
        if self.headers.get("Authorization") != f"Bearer {sim.api_key}":
            self._answer(
                number,
                fault,
                401,
                _errors([("The provided authorization grant is invalid, expired, or revoked", None)]),
            )
            return
        if body is None:
            self._answer(number, fault, 400, _errors([("Bad Request", None)]))
            return
        breaches = sendgrid_rules.check(body)
        if breaches:
            self._answer(number, fault, 400, {"errors": [b.as_json() for b in breaches]})
            return
        sender = str(body["from"]["email"]).lower()
        if sim.verified_senders is not None and sender not in sim.verified_senders:
            self._answer(
                number,
                fault,
                403,
                _errors(
                    [
                        (
                            "The from address does not match a verified Sender Identity. Mail cannot be sent until this "
                            "error is resolved.",
                            "from",
                        )
                    ]
                ),
            )
            return
        if ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"):
            self._answer(number, fault, 200, None)
            return
        accepted = sim._accept(body)
        if fault is not None and fault.kind == "accept_then_drop":
            sim._wait(fault.delay_s)
            self._drop(number, fault)
            return
        self._answer(number, fault, 202, None, {"X-Message-Id": accepted.message_id})

    def _play(self, number: int, fault: Fault) -> bool:
        """Play a fault that replaces the normal answer; False for those that act after acceptance."""
        if fault.kind == "status":
            self._answer(number, fault, fault.status, _errors([(fault.message, None)]))
            return True
        if fault.kind == "rate_limited":
            reset = math.ceil(time.time() + fault.reset_in_s)
            headers = {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            self._answer(number, fault, 429, _errors([("too many requests", None)]), headers)
            return True
        if fault.kind == "reset":
            self._drop(number, fault, rst=True)
            return True
        return False

    # -- responses

    def _answer(
        self,
        number: int,
        fault: Fault | None,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.server.simulator._finish(number, status, fault, headers)
        self._reply(status, payload, headers)

    def _reply(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _drop(self, number: int, fault: Fault, *, rst: bool = False) -> None:
        self.server.simulator._finish(number, 0, fault)
        self.close_connection = True
        if rst:
            reset_connection(self.connection)
            return
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def _drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _safe_match(match: Callable[[dict[str, Any]], bool], body: dict[str, Any]) -> bool:
    try:
        return bool(match(body))
    except (KeyError, IndexError, TypeError, AttributeError):
        return False


def _errors(items: list[tuple[str, str | None]]) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": field, "help": None} for message, field in items]}


def _new_message_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def to_recipient(address: str) -> Callable[[dict[str, Any]], bool]:
    """A ``match`` for :meth:`SendGridSimulator.script`: requests addressed to ``address``."""
    return lambda body: any(
        a.get("email") == address for p in body.get("personalizations", []) for a in p.get("to", [])
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--api-key",
    envvar="SENDGRID_API_KEY",
    default=DEFAULT_API_KEY,
    show_default=False,
    help="The key clients must send (default: SENDGRID_API_KEY, else the simulator's own).",
)
@click.option(
    "--keep", default=DEFAULT_KEEP, show_default=True, help="Accepted messages kept for inspection."
)
@click.option(
    "--latency-p50-ms", default=0.0, show_default=True, help="Median delay of a Mail Send answer (0: none)."
)
@click.option(
    "--latency-p99-ms",
    default=None,
    type=float,
    help="99th percentile of that delay (log-normal; default: the median, a constant delay).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the latency generator.")
def main(
    host: str,
    port: int,
    api_key: str,
    keep: int,
    latency_p50_ms: float,
    latency_p99_ms: float | None,
    seed: int,
) -> None:
    """Run the SendGrid simulator until interrupted; prints its URL (the SENDGRID_API_HOST to use)."""
    p99_ms = latency_p50_ms if latency_p99_ms is None else latency_p99_ms
    latency = Latency(p50_s=latency_p50_ms / 1000, p99_s=p99_ms / 1000, seed=seed)
    simulator = SendGridSimulator(api_key=api_key, host=host, port=port, keep=keep, latency=latency)
    serve_until_interrupted(simulator, f"SendGrid simulator listening on {simulator.url}")


if __name__ == "__main__":
    main()
