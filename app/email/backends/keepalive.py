"""The SendGrid SDK's HTTP client with persistent connections: one kept-alive connection per worker thread.

The SDK (``python_http_client``) opens a new connection, and builds a new ``urllib`` opener, for every request:
against api.sendgrid.com that is a TCP and a TLS handshake per email, the largest cost of a send. SendGrid
answers over HTTP/1.1 keep-alive (sendgrid-python PR #109 measured five times the throughput with it), so
:class:`KeepAliveClient` keeps everything the SDK does (URL building, headers, JSON body, its ``Response`` and
its error classes) and replaces how a request is sent: over a socket kept per thread, the request written in
one ``sendall``, the response parsed by httptools (:class:`KeptAliveConnection`).

A connection that the server closed while idle is noticed before reuse (its socket reads as at EOF) and replaced,
so a POST is never re-sent by this layer: a request that fails is the caller's to retry, as with the stock SDK.
Behind an HTTP proxy (``HTTPS_PROXY`` and friends) the stock client is used, since it honours them.
"""

from __future__ import annotations

import http.client
import io
import re
import select
import socket
import ssl
import threading
import time
import urllib.request
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit

import httptools
import orjson
import python_http_client
from python_http_client.exceptions import handle_error

#: A connection idle for less than this is reused without asking the socket whether the server closed it: servers
#: close idle keep-alive connections after tens of seconds, and the check is a system call (and a GIL hand-off)
#: per email on a busy worker.
IDLE_CHECK_AFTER_S = 1.0
#: Bytes asked of the socket per read: a Mail Send response (202, headers, empty body) fits in one.
_READ_SIZE = 65536
#: What http.client refuses in a header too: a CR or LF would start a header (or a request) of its own.
_ILLEGAL_IN_HEADER = re.compile(r"[\r\n]")


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
                    url, response.status, response.reason, response.headers, io.BytesIO(response.read())
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
    """One kept-alive connection per thread to one origin, replaced when the server has closed it."""

    def __init__(self, base_url: str, *, idle_check_after_s: float = IDLE_CHECK_AFTER_S) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.idle_check_after_s = idle_check_after_s
        self._local = threading.local()
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None

    def round_trip(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float | None
    ) -> ResponseRecord:
        parts = urlsplit(url)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        connection = self._connection(timeout)
        try:
            return connection.round_trip(method, target, headers, body, timeout)
        except BaseException:
            connection.close()
            raise
        finally:
            self._local.last_used = time.monotonic()

    def _connection(self, timeout: float | None) -> KeptAliveConnection:
        connection: KeptAliveConnection | None = getattr(self._local, "connection", None)
        if connection is not None and (
            connection.closed
            or (
                time.monotonic() - self._local.last_used >= self.idle_check_after_s
                and _closed_by_peer(connection.sock)
            )
        ):
            connection.close()
            connection = None
        if connection is None:
            connection = KeptAliveConnection(self.host, self.port, tls=self._tls, timeout=timeout)
            self._local.connection = connection
        return connection


class KeptAliveConnection:
    """One HTTP/1.1 connection kept open between requests.

    ``http.client`` parses each response's headers with the ``email`` package and wraps the socket in a new
    buffered file per response: about two thirds of a send's CPU. Here the request is written in one ``sendall``
    and the response parsed by httptools (llhttp, the C parser uvicorn uses), which also handles chunked bodies
    and tells whether the server keeps the connection open.
    """

    def __init__(self, host: str, port: int, *, tls: ssl.SSLContext | None, timeout: float | None) -> None:
        sock = socket.create_connection((host, port), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock: socket.socket = tls.wrap_socket(sock, server_hostname=host) if tls else sock
        self.timeout = timeout
        self.closed = False
        default_port = 443 if tls else 80
        self._host_header = host if port == default_port else f"{host}:{port}"

    def round_trip(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None, timeout: float | None
    ) -> ResponseRecord:
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout
        self.sock.sendall(self._request(method, target, headers, body))
        response = self._read_response(head_only=method == "HEAD")
        if not response.keep_alive:
            self.close()
        return response

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def _request(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}", "Accept-Encoding: identity"]
        for name, value in headers.items():
            if _ILLEGAL_IN_HEADER.search(name) or _ILLEGAL_IN_HEADER.search(value):
                raise ValueError(f"illegal character in header {name!r}")
            lines.append(f"{name}: {value}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")

    def _read_response(self, *, head_only: bool) -> ResponseRecord:
        record = ResponseRecord()
        parser = record.parser = httptools.HttpResponseParser(record)
        while not (record.complete or (head_only and record.headers_complete)):
            data = self.sock.recv(_READ_SIZE)
            if not data:
                if record.headers_complete and not _delimited(record.headers):
                    break  # a body that ends where the connection does
                raise http.client.RemoteDisconnected("the server closed the connection before responding")
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as err:
                raise http.client.HTTPException(f"malformed HTTP response: {err}") from err
        record.status = parser.get_status_code()
        return record


class ResponseRecord:
    """A whole response, read: the parser's callbacks fill it, and the SDK's ``Response`` reads it through the
    ``getcode``/``read``/``info`` interface of a ``urllib`` response."""

    def __init__(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers = http.client.HTTPMessage()
        self.body = bytearray()
        self.headers_complete = False
        self.complete = False
        #: Known once the message is complete: not at the end of a body that only the close delimits.
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_complete = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True
        # Asked now: the parser forgets it once the message is over.
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()

    # what python_http_client.client.Response reads
    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return bytes(self.body)

    def info(self) -> http.client.HTTPMessage:
        return self.headers


def _delimited(headers: http.client.HTTPMessage) -> bool:
    """Whether the body's end is marked (a length or chunks) rather than by closing the connection."""
    return "Content-Length" in headers or "chunked" in headers.get("Transfer-Encoding", "").lower()


def _closed_by_peer(sock: Any) -> bool:
    """An idle kept-alive socket is readable only when the server closed it (or sent what we never asked for)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
