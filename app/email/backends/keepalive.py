"""The SendGrid SDK's HTTP client with persistent connections: one kept-alive connection per worker thread.

The SDK (``python_http_client``) opens a new connection, and builds a new ``urllib`` opener, for every request:
against api.sendgrid.com that is a TCP and a TLS handshake per email, the largest cost of a send. SendGrid
answers over HTTP/1.1 keep-alive (sendgrid-python PR #109 measured five times the throughput with it), so
:class:`KeepAliveClient` keeps everything the SDK does (URL building, headers, JSON body, its ``Response`` and
its error classes) and replaces how a request is sent.

A connection that the server closed while idle is noticed before reuse (its socket reads as at EOF) and replaced,
so a POST is never re-sent by this layer: a request that fails is the caller's to retry, as with the stock SDK.
Behind an HTTP proxy (``HTTPS_PROXY`` and friends) the stock client is used, since it honours them.
"""

from __future__ import annotations

import http.client
import io
import select
import ssl
import threading
import time
import urllib.request
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit

import orjson
import python_http_client
from python_http_client.exceptions import handle_error

#: A connection idle for less than this is reused without asking the socket whether the server closed it: servers
#: close idle keep-alive connections after tens of seconds, and the check is a system call (and a GIL hand-off)
#: per email on a busy worker.
IDLE_CHECK_AFTER_S = 1.0


def sdk_http_client(
    host: str,
    *,
    request_headers: dict[str, str],
    timeout_s: float,
    idle_check_after_s: float = IDLE_CHECK_AFTER_S,
) -> python_http_client.Client:
    """The client the SendGrid SDK should use for ``host``: kept-alive, unless a proxy is configured."""
    if urllib.request.getproxies():
        return python_http_client.Client(
            host=host, request_headers=request_headers, version=3, timeout=timeout_s
        )
    return KeepAliveClient(
        host,
        connections=ThreadConnections(host, idle_check_after_s=idle_check_after_s),
        request_headers=request_headers,
        version=3,
        timeout=timeout_s,
    )


class KeepAliveClient(python_http_client.Client):  # type: ignore[misc]
    """``python_http_client.Client`` whose requests go through :class:`ThreadConnections`.

    The SDK's request function (``Client.__getattr__``) also builds a ``urllib`` opener per request, which scans
    the whole environment for proxy variables, and formats the whole payload for a DEBUG log line that is never
    shown; together about a third of a send's CPU. Requests are therefore made here, with the SDK's URL
    building, headers, ``Response`` and error classes; the body is the same JSON, encoded by orjson.
    """

    def __init__(self, host: str, *, connections: ThreadConnections, **options: Any) -> None:
        super().__init__(host, **options)
        self._connections = connections

    def __getattr__(self, name: str) -> Any:
        if name not in self.methods:
            return super().__getattr__(name)
        method = name.upper()

        def http_request(
            request_body: Any = None,
            query_params: dict[str, Any] | None = None,
            request_headers: dict[str, str] | None = None,
            timeout: float | None = None,
            **_: Any,
        ) -> python_http_client.client.Response:
            if request_headers:
                self._update_headers(request_headers)
            url = self._build_url(query_params)
            body = self._encode(request_body)
            response = self._connections.round_trip(
                method, url, body, self.request_headers, timeout or self.timeout
            )
            if response.status >= 400:
                # What urllib's HTTPErrorProcessor raises, mapped to the SDK's own error classes.
                error = HTTPError(
                    url, response.status, response.reason, response.msg, io.BytesIO(response.read())
                )
                raise handle_error(error)
            return python_http_client.client.Response(response)

        return http_request

    def _encode(self, body: Any) -> bytes | None:
        """The body as the SDK encodes it: JSON unless the caller set another content type."""
        if body is None:
            return None
        if self.request_headers.get("Content-Type", "application/json") != "application/json":
            return str(body).encode("utf-8")
        self.request_headers.setdefault("Content-Type", "application/json")
        return orjson.dumps(body)

    def _build_client(self, name: str | None = None) -> KeepAliveClient:
        # The SDK builds a client per URL segment (client.mail.send.post); each must share the connections.
        url_path = [*self._url_path, name] if name else self._url_path
        return KeepAliveClient(
            self.host,
            connections=self._connections,
            version=self._version,
            request_headers=self.request_headers,
            url_path=url_path,
            append_slash=self.append_slash,
            timeout=self.timeout,
        )


class ThreadConnections:
    """One HTTP(S) connection per thread to one origin, reused while the server keeps it open."""

    def __init__(self, base_url: str, *, idle_check_after_s: float = IDLE_CHECK_AFTER_S) -> None:
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port
        self.idle_check_after_s = idle_check_after_s
        self._local = threading.local()
        self._tls = ssl.create_default_context() if self.scheme == "https" else None

    def round_trip(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float | None
    ) -> http.client.HTTPResponse:
        """Send the request and return the response with its body unread (the caller reads it whole)."""
        parts = urlsplit(url)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        connection = self._connection(timeout)
        try:
            connection.request(method, target, body=body, headers=headers)
            return connection.getresponse()
        except BaseException:
            connection.close()
            raise
        finally:
            self._local.last_used = time.monotonic()

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open(timeout)
            self._local.connection = connection
        elif (
            connection.sock is not None
            and time.monotonic() - self._local.last_used >= self.idle_check_after_s
            and _closed_by_peer(connection.sock)
        ):
            connection.close()  # reopened by the next request
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection

    def _open(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def _closed_by_peer(sock: Any) -> bool:
    """An idle kept-alive socket is readable only when the server closed it (or sent what we never asked for)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
