"""The SDK's HTTP client with kept-alive connections, against the simulator's real HTTP/1.1 server."""

from __future__ import annotations

import re
import socket
import threading

import pytest
import python_http_client
from python_http_client.exceptions import BadRequestsError, UnauthorizedError

from app.email.backends.keepalive import KeepAliveClient, sdk_http_client
from app.email.backends.sendgrid import SendGridBackend, build_payload
from app.email.message import OutgoingEmail
from app.errors import RetryableError
from app.testing.sendgrid_server import Fault, SendGridSimulator
from tests.support.worker import wait_for
from tests.unit.email.conftest import API_KEY


def email(number: int) -> OutgoingEmail:
    return OutgoingEmail(
        idempotency_key=f"welcome:{number}",
        kind="welcome",
        to_email=f"user{number}@example.com",
        to_name="",
        subject="Welcome",
        text="plain",
        html="<p>html</p>",
    )


def backend(url: str) -> SendGridBackend:
    return SendGridBackend(api_key=API_KEY, host=url, timeout_s=2.0, sender="noreply@example.com")


def test_one_thread_sends_every_email_over_one_connection(simulator: SendGridSimulator) -> None:
    sender = backend(simulator.url)
    ids = [sender.send(email(n)) for n in range(5)]
    assert len(set(ids)) == 5
    assert simulator.accepted_total == 5
    assert simulator.connections_opened == 1


def test_each_thread_keeps_its_own_connection(simulator: SendGridSimulator) -> None:
    sender = backend(simulator.url)
    threads = [
        threading.Thread(target=lambda t=t: [sender.send(email(10 * t + n)) for n in range(3)])
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert simulator.accepted_total == 12
    assert simulator.connections_opened == 4


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error() -> None:
    with SendGridSimulator(api_key=API_KEY, idle_timeout_s=0.2) as simulator:
        client = sdk_http_client(
            simulator.url,
            request_headers={"Authorization": f"Bearer {API_KEY}"},
            timeout_s=2.0,
            idle_check_after_s=0.0,
        )
        client.mail.send.post(request_body=build_payload(email(1), sender="noreply@example.com"))
        wait_for(
            lambda: simulator.connections_closed == 1,
            timeout=5,
            what="the server to close the idle connection",
        )
        client.mail.send.post(request_body=build_payload(email(2), sender="noreply@example.com"))
        assert simulator.accepted_total == 2
        assert simulator.connections_opened == 2


def test_after_a_dropped_connection_the_next_email_goes_out_on_a_new_one(
    simulator: SendGridSimulator,
) -> None:
    sender = backend(simulator.url)
    sender.send(email(1))
    simulator.script(Fault.reset())
    with pytest.raises(RetryableError, match="unreachable"):
        sender.send(email(2))
    sender.send(email(3))
    assert simulator.accepted_total == 2
    assert simulator.connections_opened == 2


def test_error_responses_raise_the_sdks_own_errors_and_keep_the_connection(
    simulator: SendGridSimulator,
) -> None:
    client = sdk_http_client(simulator.url, request_headers={"Authorization": "Bearer wrong"}, timeout_s=2.0)
    with pytest.raises(UnauthorizedError) as unauthorized:
        client.mail.send.post(request_body={})
    assert unauthorized.value.status_code == 401
    assert b"authorization grant is invalid" in unauthorized.value.body
    client.request_headers["Authorization"] = f"Bearer {API_KEY}"
    with pytest.raises(BadRequestsError) as bad:
        client.mail.send.post(request_body={"personalizations": []})
    assert bad.value.status_code == 400
    assert simulator.connections_opened == 1


def test_behind_a_proxy_the_stock_client_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    client = sdk_http_client("https://api.sendgrid.com", request_headers={}, timeout_s=2.0)
    assert type(client) is python_http_client.Client
    monkeypatch.delenv("HTTPS_PROXY")
    assert isinstance(
        sdk_http_client("https://api.sendgrid.com", request_headers={}, timeout_s=2.0), KeepAliveClient
    )


class CannedServer:
    """A raw TCP server on 127.0.0.1 that answers each request on a connection with the next canned bytes:
    for responses that the simulator (a well-behaved server) never sends."""

    def __init__(self, responses: list[bytes]) -> None:
        self.responses = list(responses)
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.responses:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed by the test
            self.connections += 1
            with conn:
                while self.responses:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        request += chunk
                    if not request:
                        break
                    head, _, body = request.partition(b"\r\n\r\n")
                    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
                    while len(body) < length:
                        body += conn.recv(65536)
                    response = self.responses.pop(0)
                    conn.sendall(response)
                    if b"Connection: close" in response:
                        break

    def close(self) -> None:
        self.listener.close()


def canned_client(server: CannedServer) -> python_http_client.Client:
    return sdk_http_client(server.url, request_headers={"Authorization": "Bearer k"}, timeout_s=2.0)


def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    server = CannedServer(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Message-Id: one\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        ]
    )
    try:
        client = canned_client(server)
        first = client.mail.send.post(request_body={})
        assert (first.status_code, first.body, first.headers["x-message-id"]) == (200, b"hello world", "one")
        second = client.mail.send.post(request_body={})
        assert second.body == b"until the end"
        assert server.connections == 1
    finally:
        server.close()


def test_a_connection_the_server_asks_to_close_is_not_reused() -> None:
    ok = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n"
    server = CannedServer([ok + b"Connection: close\r\n\r\n", ok + b"\r\n"])
    try:
        client = canned_client(server)
        client.mail.send.post(request_body={})
        client.mail.send.post(request_body={})
        assert server.connections == 2
    finally:
        server.close()


def test_a_malformed_response_is_a_retryable_error() -> None:
    server = CannedServer([b"this is not HTTP\r\n\r\n"])
    try:
        sender = backend(server.url)
        with pytest.raises(RetryableError, match="unreachable"):
            sender.send(email(1))
    finally:
        server.close()


def test_a_header_value_cannot_inject_another_header() -> None:
    server = CannedServer([b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"])
    try:
        client = sdk_http_client(
            server.url, request_headers={"X-Note": "a\r\nX-Injected: yes"}, timeout_s=2.0
        )
        with pytest.raises(ValueError, match="illegal character"):
            client.mail.send.post(request_body={})
    finally:
        server.close()
