"""A Sentry ingest stand-in: a real HTTP server on 127.0.0.1 that accepts envelopes and keeps what arrived.

Tests point ``SENTRY_DSN`` at :attr:`SentryServer.dsn` so that sentry-sdk's real transport (in this process or
in a worker subprocess) sends to it; the test then asserts on the decoded events and on the raw envelope
bytes, which is the only way to prove that nothing secret leaves the process. Envelope format and transport
as in docs/sentry.md: ``POST /api/<project>/envelope/``, body gzip, brotli or plain, newline-separated
JSON (envelope header, then item header + payload per item, payload length given or up to the next newline).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Envelope", "EnvelopeError", "EnvelopeItem", "SentryServer", "decode_body", "parse_envelope"]


class EnvelopeError(ValueError):
    """The body is not a Sentry envelope (bad compression, JSON or item length)."""


@dataclass(frozen=True)
class EnvelopeItem:
    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers.get("type", ""))

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class Envelope:
    """One POSTed envelope: its project, decoded header and items, and the decompressed body as sent."""

    project: str
    headers: dict[str, Any]
    items: list[EnvelopeItem]
    raw: bytes
    content_encoding: str


def decode_body(body: bytes, content_encoding: str) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, br or none)."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as err:
        raise EnvelopeError(f"body is not valid {encoding}: {err}") from err
    if encoding == "br":
        try:
            import brotli  # optional: the SDK only sends br when brotli is installed
        except ImportError as err:
            raise EnvelopeError("a br body needs the brotli package") from err
        try:
            return bytes(brotli.decompress(body))
        except brotli.error as err:
            raise EnvelopeError(f"body is not valid br: {err}") from err
    raise EnvelopeError(f"unsupported Content-Encoding {content_encoding!r}")


def parse_envelope(data: bytes, *, project: str = "", content_encoding: str = "") -> Envelope:
    """Split a decompressed envelope into header and items."""
    header_line, _, rest = data.partition(b"\n")
    try:
        headers = json.loads(header_line) if header_line.strip() else {}
    except json.JSONDecodeError as err:
        raise EnvelopeError(f"bad envelope header: {err}") from err
    items: list[EnvelopeItem] = []
    pos = 0
    while pos < len(rest):
        end = rest.find(b"\n", pos)
        line = rest[pos:] if end < 0 else rest[pos:end]
        pos = len(rest) if end < 0 else end + 1
        if not line.strip():
            continue
        try:
            item_headers = json.loads(line)
        except json.JSONDecodeError as err:
            raise EnvelopeError(f"bad item header: {err}") from err
        length = item_headers.get("length")
        if length is not None:
            payload = rest[pos : pos + int(length)]
            if len(payload) != int(length):
                raise EnvelopeError(f"item announces {length} bytes, {len(payload)} present")
            pos += int(length)
            if rest[pos : pos + 1] == b"\n":
                pos += 1
        else:
            end = rest.find(b"\n", pos)
            payload = rest[pos:] if end < 0 else rest[pos:end]
            pos = len(rest) if end < 0 else end + 1
        items.append(EnvelopeItem(item_headers, payload))
    return Envelope(project, headers, items, data, content_encoding)


@dataclass
class _Store:
    envelopes: list[Envelope] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "api" or parts[2] != "envelope":
            self._reply(404, {"detail": "not an envelope endpoint"})
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        try:
            envelope = parse_envelope(
                decode_body(body, encoding), project=parts[1], content_encoding=encoding
            )
        except EnvelopeError as err:
            with self.server.store.condition:
                self.server.store.errors.append(str(err))
            self._reply(400, {"detail": str(err)})
            return
        with self.server.store.condition:
            self.server.store.envelopes.append(envelope)
            self.server.store.condition.notify_all()
        self._reply(200, {"id": envelope.headers.get("event_id")})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the SDK posts often and tests read the store, not the access log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: _Store) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store = store


class SentryServer:
    """``with SentryServer() as sentry: ... sentry.wait_for_events(1)``; a free port on 127.0.0.1."""

    def __init__(self, project: str = "1", public_key: str = "public") -> None:
        self.project = project
        self.public_key = public_key
        self._store = _Store()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SentryServer:
        self._server = _Server(self._store)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sentry-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> SentryServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the Sentry server is not running")
        return int(self._server.server_address[1])

    @property
    def dsn(self) -> str:
        return f"http://{self.public_key}@127.0.0.1:{self.port}/{self.project}"

    @property
    def envelopes(self) -> list[Envelope]:
        with self._store.condition:
            return list(self._store.envelopes)

    @property
    def errors(self) -> list[str]:
        """Bodies that were rejected (the SDK sent something that is not an envelope)."""
        with self._store.condition:
            return list(self._store.errors)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Decoded payloads of every ``event`` item, in arrival order."""
        return [item.json() for env in self.envelopes for item in env.items if item.type == "event"]

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def raw(self) -> bytes:
        """Every decompressed body received, concatenated: what left the process, byte for byte."""
        return b"\n".join(env.raw for env in self.envelopes)

    def wait_for_events(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` events arrived; raises ``AssertionError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._store.condition:
            while True:
                events = [i.json() for e in self._store.envelopes for i in e.items if i.type == "event"]
                if len(events) >= n:
                    return events
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {n} Sentry event(s) within {timeout} s, got {len(events)}"
                    )
                self._store.condition.wait(remaining)

    def clear(self) -> None:
        with self._store.condition:
            self._store.envelopes.clear()
            self._store.errors.clear()
