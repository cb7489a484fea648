"""The life cycle the test HTTP servers share: serve a ``ThreadingHTTPServer`` in a daemon thread, stop it cleanly,
and run it from a ``python -m`` command until Ctrl-C.

Each simulator keeps its own handler and state; only the start/stop scaffolding lives here, so a fix to how a
server shuts down (e.g. never calling ``shutdown()`` on a server that never served, which would block forever)
is made once.
"""

from __future__ import annotations

import contextlib
import threading
from http.server import ThreadingHTTPServer
from typing import Generic, Self, TypeVar

import click

ServerT = TypeVar("ServerT", bound=ThreadingHTTPServer)


class BackgroundServer(Generic[ServerT]):
    """Base of a test server: a context manager that serves on enter and stops on exit.

    ``stopping`` is set before the server shuts down, so handlers sleeping on it (latency, stalled bodies) wake
    at once instead of holding the shutdown up.
    """

    def __init__(self, server: ServerT, *, thread_name: str, stopping: threading.Event | None = None) -> None:
        self._server = server
        self._thread_name = thread_name
        self._stopping = stopping if stopping is not None else threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self._thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_until_interrupted(server: BackgroundServer[ServerT], message: str) -> None:
    """For a server's ``__main__`` command: start it, print ``message`` and serve until Ctrl-C."""
    with server:
        click.echo(message)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
