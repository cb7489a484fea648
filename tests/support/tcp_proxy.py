"""A threaded TCP proxy that a test can cut: every open connection dropped, new ones refused, until restored.

Put in front of PostgreSQL (or Redis), it plays an outage as clients meet it in production: statements in flight
fail with "server closed the connection unexpectedly", new connections are reset at once, and after
:meth:`TcpProxy.restore` everything works again. It listens on a port the OS picks.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

_CHUNK = 64 * 1024


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; a context manager that starts on enter and stops on exit."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._refusing = False
        self._stopping = False
        self._accepted = 0
        self._refused = 0
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def accepted(self) -> int:
        """Connections forwarded so far."""
        return self._accepted

    @property
    def refused(self) -> int:
        """Connections reset at once because the proxy was cut."""
        return self._refused

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        """Drop every open connection (both ends) and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._refusing = True
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        """Forward new connections again (dropped ones stay dropped: clients reconnect)."""
        with self._lock:
            self._refusing = False

    def stop(self) -> None:
        self._stopping = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._thread.is_alive():
            self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed by stop()
            with self._lock:
                refusing = self._refusing
            if refusing:
                self._refused += 1
                _close(client, reset=True)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client, reset=True)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._refusing:  # cut while connecting
                    _close(client, reset=True)
                    _close(upstream)
                    continue
                self._open.update((client, upstream))
                self._accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy one direction until either end goes; then close both (a half-open proxy helps no test)."""
        try:
            while chunk := source.recv(_CHUNK):
                sink.sendall(chunk)
        except OSError:
            pass  # the connection was cut or reset: closed below
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket, *, reset: bool = False) -> None:
    """Close ``sock``, waking a thread blocked in ``recv`` on it; ``reset`` sends an RST instead of a FIN."""
    with contextlib.suppress(OSError):
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    sock.close()
