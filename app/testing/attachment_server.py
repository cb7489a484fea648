"""A file server that misbehaves the way attachment hosts do: a real HTTP server on 127.0.0.1 for the tests.

Each path is a :class:`Route`: a file (with any ``Content-Type`` and ``Content-Disposition``, right or wrong),
a redirect, an error status, a body cut short of its ``Content-Length``, an endless body larger than any cap,
a server slow to answer or slow between chunks. Every request is counted per path (``hits``). Each connection
is served by its own thread, so a slow route holds only its own client.

From Python::

    with AttachmentServer() as server:
        server.add("/sow.pdf", Route.file(pdf_bytes, content_type="text/html"))
        server.add("/old", Route.redirect("/sow.pdf"))
        url = server.url("/old")

Standalone, it serves a directory's files (for trying ``jobs enqueue process_attachment`` by hand)::

    python -m app.testing.attachment_server --dir tests/fixtures/solicitation --port 8030
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click

from app.testing.http_server import BackgroundServer, serve_until_interrupted

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Route:
    """What one path answers. Build one with the class methods."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    #: The Content-Length sent; more than ``len(body)`` makes a truncated body (the connection is then closed).
    declared_length: int | None = None
    #: Bytes of filler streamed without a Content-Length after ``body`` (an oversized, never-ending download).
    stream_bytes: int = 0
    #: Seconds before the status line, and between two chunks of the body.
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    chunk_size: int = _CHUNK

    @classmethod
    def file(
        cls,
        body: bytes,
        *,
        content_type: str | None = "application/octet-stream",
        filename: str | None = None,
        disposition: str | None = None,
    ) -> Route:
        """A file. ``filename`` becomes ``Content-Disposition: attachment; filename="..."`` verbatim (unsafe
        names included); ``disposition`` sets the whole header instead."""
        headers = []
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        if disposition is None and filename is not None:
            disposition = f'attachment; filename="{filename}"'
        if disposition is not None:
            headers.append(("Content-Disposition", disposition))
        return cls(body=body, headers=tuple(headers))

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Route:
        return cls(status=status, headers=(("Location", location),))

    @classmethod
    def error(cls, status: int) -> Route:
        return cls(status=status, body=f"error {status}".encode(), headers=(("Content-Type", "text/plain"),))

    @classmethod
    def truncated(cls, body: bytes, *, declared_length: int, content_type: str = "application/pdf") -> Route:
        """Sends ``body`` while announcing ``declared_length`` bytes, then closes the connection."""
        return cls(body=body, declared_length=declared_length, headers=(("Content-Type", content_type),))

    @classmethod
    def endless(cls, total_bytes: int, *, declared: bool = False, head: bytes = b"%PDF-1.7\n") -> Route:
        """``total_bytes`` of a fake PDF; with ``declared`` the Content-Length says so up front."""
        length = len(head) + total_bytes if declared else None
        return cls(
            body=head,
            stream_bytes=total_bytes,
            declared_length=length,
            headers=(("Content-Type", "application/pdf"),),
        )

    @classmethod
    def slow(
        cls, body: bytes, *, delay_s: float = 0.0, chunk_delay_s: float = 0.0, chunk_size: int = 1024
    ) -> Route:
        """Waits ``delay_s`` before answering and ``chunk_delay_s`` between chunks of ``chunk_size`` bytes."""
        return cls(
            body=body,
            delay_s=delay_s,
            chunk_delay_s=chunk_delay_s,
            chunk_size=chunk_size,
            headers=(("Content-Type", "application/pdf"),),
        )


@dataclass
class _State:
    routes: dict[str, Route] = field(default_factory=dict)
    hits: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Set when the server stops, so slow routes end their waits at once.
    stopping: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            state.hits[path] += 1
            route = state.routes.get(path)
        if route is None:
            route = Route.error(404)
        if route.delay_s and state.stopping.wait(route.delay_s):
            return
        self.send_response(route.status)
        for name, value in route.headers:
            self.send_header(name, value)
        endless = route.stream_bytes > 0 and route.declared_length is None
        if endless:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(route.declared_length or len(route.body)))
        if route.declared_length is not None and route.declared_length > len(route.body) + route.stream_bytes:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            self._write_body(route, state.stopping)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (a cap or a timeout on its side): expected in these tests
        if endless or (route.declared_length or 0) > len(route.body) + route.stream_bytes:
            self.close_connection = True

    def _write_body(self, route: Route, stopping: threading.Event) -> None:
        body = route.body
        for start in range(0, len(body), route.chunk_size):
            if route.chunk_delay_s and start and stopping.wait(route.chunk_delay_s):
                return
            self.wfile.write(body[start : start + route.chunk_size])
            self.wfile.flush()
        remaining = route.stream_bytes
        filler = b"0" * _CHUNK
        while remaining > 0 and not stopping.is_set():
            piece = filler[: min(_CHUNK, remaining)]
            self.wfile.write(piece)
            remaining -= len(piece)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read ``hits``, not an access log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: _State


class AttachmentServer(BackgroundServer[_Server]):
    """The server, started on ``127.0.0.1`` (port 0 picks a free one) by ``with`` or :meth:`start`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        state = _State()
        super().__init__(
            _Server((host, port), _Handler), thread_name="attachment-server", stopping=state.stopping
        )
        self._server.state = state

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(self, path: str, route: Route) -> str:
        """Serve ``route`` at ``path``; returns its full URL."""
        with self._server.state.lock:
            self._server.state.routes[path] = route
        return self.url(path)

    def hits(self, path: str) -> int:
        with self._server.state.lock:
            return self._server.state.hits[path]


@click.command()
@click.option(
    "--dir", "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8030, show_default=True, type=int)
def main(directory: Path, host: str, port: int) -> None:
    """Serve every file of DIRECTORY at /<name> until interrupted."""
    server = AttachmentServer(host, port)
    for path in sorted(directory.iterdir()):
        if path.is_file():
            server.add(f"/{path.name}", Route.file(path.read_bytes()))
    serve_until_interrupted(server, f"serving {directory} at {server.base_url}")


if __name__ == "__main__":
    main()
