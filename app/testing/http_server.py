"""The life cycle the test HTTP servers share: serve a ``ThreadingHTTPServer`` in a daemon thread, stop it cleanly,
and run it from a ``python -m`` command until Ctrl-C.

Each simulator keeps its own handler and state; only the start/stop scaffolding lives here, so a fix to how a
server shuts down (e.g. never calling ``shutdown()`` on a server that never served, which would block forever)
is made once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from http.server import ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

import click

logger = logging.getLogger(__name__)

#: Connections the listening socket queues before they are accepted (socketserver's default is 5, which
#: drops the SYNs of a burst of new connections and costs them a one-second retransmission).
LISTEN_BACKLOG = 512

ServerT = TypeVar("ServerT", bound=ThreadingHTTPServer)


class SimulatorHTTPServer(ThreadingHTTPServer):
    """The listening server of a simulator: handler threads never keep the process alive, a burst of new
    connections is queued (:data:`LISTEN_BACKLOG`), and connections a scripted fault drops print no traceback."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped connections are part of the script; keep the test output clean.
        logger.debug("simulator request ended abruptly", exc_info=True)


def reset_connection(connection: socket.socket) -> None:
    """Close with linger 0: close() sends RST, the client sees "connection reset by peer"."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


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
