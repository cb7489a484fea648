"""Streamed download of one attachment into a temporary file, with every failure classified for the retry policy.

The body is written chunk by chunk while its sha256 is computed, so memory does not grow with the file, and
the size cap is enforced while streaming (a ``Content-Length`` over the cap is refused before the first byte;
a server that lies about it or sends none is cut off at the cap). Timeouts: connecting, the silence between
two chunks, and the whole download (a server trickling bytes just under the read timeout ends there too).

Classification: timeouts, connection failures, truncated bodies, 5xx, 408 and 429 are
:class:`~app.errors.RetryableError` (429 as :class:`~app.errors.RateLimited` with its ``Retry-After``);
other 4xx, too many redirects, a bad URL and an oversized body are :class:`~app.errors.PermanentError`.
"""

from __future__ import annotations

import email.message
import functools
import hashlib
import ipaddress
import re
import socket
import ssl
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

import httpx

from app.errors import PermanentError, RateLimited, RetryableError

if TYPE_CHECKING:
    from app.settings import Settings

#: Redirects followed before the download fails permanently (a loop or a chain that leads nowhere).
MAX_REDIRECTS = 5
#: Longest safe file name kept (file systems allow 255 bytes; room is left for a suffix).
MAX_NAME_CHARS = 150
#: A 429 without a usable Retry-After is retried after this many seconds.
DEFAULT_RETRY_AFTER_S = 60.0
_UNSAFE = re.compile(r"[^\w.() -]+")
_USER_AGENT = "jobs-platform attachment fetcher"


@dataclass(frozen=True)
class Downloaded:
    """A complete body in ``path`` (the caller's target)."""

    path: Path
    sha256: str
    size: int
    #: Safe to join to a directory: no separators, no leading dot, never empty.
    file_name: str
    #: What the server claimed; kept for the log only, the type is sniffed from the bytes.
    header_content_type: str | None
    final_url: str


def safe_file_name(raw: str | None, *, fallback: str = "attachment") -> str:
    """The last path component of ``raw``, reduced to letters, digits and ``._-() ``.

    ``../../etc/passwd`` becomes ``passwd``; ``..\\..\\boot.ini`` becomes ``boot.ini``; a name that is
    nothing but dots or separators becomes ``fallback``.
    """
    name = unicodedata.normalize("NFKC", raw or "").replace("\\", "/").replace("\x00", "")
    name = PurePosixPath(name).name if "/" in name else name
    name = _UNSAFE.sub("_", name).strip(" ._")
    if not name or name.strip(".") == "":
        return fallback
    stem, dot, suffix = name.rpartition(".")
    if dot and len(name) > MAX_NAME_CHARS:
        return stem[: MAX_NAME_CHARS - len(suffix) - 1] + "." + suffix[:16]
    return name[:MAX_NAME_CHARS]


def name_from_headers(content_disposition: str | None, url: str) -> str | None:
    """The file name the server gave (``filename*`` or ``filename``), else the URL's last path segment."""
    if content_disposition:
        message = email.message.Message()
        message["content-disposition"] = content_disposition
        given = message.get_filename()
        if given:
            return given
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return segment or None


@dataclass(frozen=True)
class Policy:
    """The limits of a download (the ``ATTACHMENT_*`` settings)."""

    max_bytes: int
    connect_timeout_s: float
    read_timeout_s: float
    total_timeout_s: float
    #: Fetch from loopback, private, link-local and other non-public addresses (tests, a local mirror).
    allow_private_hosts: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_bytes=settings.attachment_max_bytes,
            connect_timeout_s=settings.attachment_connect_timeout_s,
            read_timeout_s=settings.attachment_read_timeout_s,
            total_timeout_s=settings.attachment_download_timeout_s,
            allow_private_hosts=settings.attachment_allow_private_hosts,
        )


def download(
    url: str,
    *,
    target: Path,
    policy: Policy,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> Downloaded:
    """Stream ``url`` into ``target`` (a temporary name the caller renames); raises the module's errors.

    ``target`` is deleted when the download fails. ``on_progress(received, expected)`` is called after each
    chunk (``expected`` is the Content-Length, or None when the server sent none).
    """
    timeout = httpx.Timeout(
        connect=policy.connect_timeout_s, read=policy.read_timeout_s, write=policy.read_timeout_s, pool=5.0
    )
    hooks = {} if policy.allow_private_hosts else {"request": [_refuse_non_public_hosts]}
    try:
        with (
            target.open("wb") as handle,
            httpx.Client(
                timeout=timeout,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                headers={"User-Agent": _USER_AGENT},
                event_hooks=hooks,
                verify=_tls_context(),
            ) as client,
        ):
            result = _stream(
                client, url, handle, target, policy.max_bytes, policy.total_timeout_s, on_progress
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return result


def _stream(
    client: httpx.Client,
    url: str,
    handle: BinaryIO,
    part: Path,
    max_bytes: int,
    total_timeout_s: float,
    on_progress: Callable[[int, int | None], None] | None,
) -> Downloaded:
    deadline = time.monotonic() + total_timeout_s
    digest = hashlib.sha256()
    received = 0
    try:
        with client.stream("GET", url) as response:
            _check_status(response)
            expected = _content_length(response)
            if expected is not None and expected > max_bytes:
                raise PermanentError(
                    f"attachment too large: Content-Length {expected} bytes is over the {max_bytes}-byte cap"
                )
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise PermanentError(
                        f"attachment too large: over the {max_bytes}-byte cap while streaming"
                    )
                digest.update(chunk)
                handle.write(chunk)
                if on_progress is not None:
                    on_progress(received, expected)
                if time.monotonic() > deadline:
                    raise RetryableError(
                        f"attachment download took over {total_timeout_s:.0f} s ({received} bytes received)"
                    )
            name = name_from_headers(response.headers.get("content-disposition"), str(response.url))
            header_type = response.headers.get("content-type")
            final_url = str(response.url)
    except httpx.TimeoutException as err:
        raise RetryableError(
            f"attachment download timed out ({type(err).__name__}) after {received} bytes"
        ) from err
    except httpx.TooManyRedirects as err:
        raise PermanentError(f"attachment URL redirects more than {MAX_REDIRECTS} times") from err
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
        raise PermanentError(f"attachment URL cannot be fetched: {err}") from err
    except httpx.DecodingError as err:
        raise PermanentError(f"attachment body has a broken Content-Encoding: {err}") from err
    except httpx.RemoteProtocolError as err:
        raise RetryableError(
            f"attachment download truncated or garbled after {received} bytes: {err}"
        ) from err
    except httpx.TransportError as err:
        raise RetryableError(f"attachment download failed: {type(err).__name__}: {err}") from err
    handle.flush()
    if received == 0:
        raise PermanentError("unsupported attachment: the server sent an empty body")
    return Downloaded(
        path=part,
        sha256=digest.hexdigest(),
        size=received,
        file_name=safe_file_name(name),
        header_content_type=header_type,
        final_url=final_url,
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs 25 ms or more, which a client per download
    would pay every time (contexts are safe to share between threads)."""
    return httpx.create_ssl_context()


def _refuse_non_public_hosts(request: httpx.Request) -> None:
    """Run before the first request and before each redirect: the URL's host must resolve to public addresses
    only, so an attachment link cannot make the worker read the cloud metadata service or an internal admin.

    The name is resolved again when connecting; a DNS answer changed in between (rebinding) is not caught.
    """
    host = request.url.host
    try:
        answers = socket.getaddrinfo(host, request.url.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise RetryableError(f"attachment host {host} does not resolve: {err.strerror}") from err
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            raise PermanentError(
                f"attachment URL refused: {host} resolves to the non-public address {address} "
                "(ATTACHMENT_ALLOW_PRIVATE_HOSTS=true allows it)"
            )


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        raise RateLimited(_retry_after(response.headers.get("retry-after")), "attachment server answered 429")
    if status >= 500 or status == 408:
        raise RetryableError(f"attachment server answered {status}")
    raise PermanentError(f"attachment server answered {status}")


def _retry_after(value: str | None) -> float:
    try:
        return float(value) if value is not None else DEFAULT_RETRY_AFTER_S
    except ValueError:  # an HTTP date: rare for downloads, not worth parsing
        return DEFAULT_RETRY_AFTER_S


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or response.headers.get("content-encoding"):
        return None  # a compressed body's length says nothing about what it unpacks to
    try:
        return int(value)
    except ValueError:
        return None
