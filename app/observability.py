"""Logging (structlog, JSON by default, stdlib bridged), Sentry, and the scrubbing that keeps secrets in.

Call :func:`setup` once per process before the broker exists (Sentry must hook in first).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import multiprocessing.util
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import orjson
import structlog

from app.settings import Settings
from app.timed_flush import TimedFlush

#: Patterns whose matches never leave the process (Sentry events, breadcrumbs).
_SECRET_PATTERNS = (
    (re.compile(r"(api_key=)[^&\s\"']+", re.IGNORECASE), r"\1[Filtered]"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+", re.IGNORECASE), r"\1[Filtered]"),
    (re.compile(r"\bSG\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), "[Filtered]"),
    (re.compile(r"([a-z][a-z0-9+.\-]*://)[^:@/\s]+(:[^@/\s]*)?@", re.IGNORECASE), r"\1[Filtered]@"),
    (re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"), "[email]"),
)
#: Words that mark a key's value as secret, matched against the key's ``_``/``-``/``.`` separated parts, so that
#: ``sendgrid_password`` or ``html_body`` are filtered while the SDK's own ``contexts``/``pre_context`` are not
#: (replacing those with a string makes sentry-sdk drop the whole event).
_SECRET_WORDS = frozenset(
    {
        "authorization",
        "password",
        "passwd",
        "secret",
        "token",
        "dsn",
        "cookie",
        "email",
        "body",
        "html",
        "text",
    }
)


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if "apikey" in re.sub(r"[_\-.\s]", "", lowered):
        return True
    return any(part in _SECRET_WORDS for part in re.split(r"[_\-.\s]+", lowered))


def scrub(value: Any) -> Any:
    """Recursively replace secrets, credentials in URLs and email addresses."""
    if isinstance(value, str):
        for pattern, replacement in _SECRET_PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {
            k: "[Filtered]" if isinstance(k, str) and _is_secret_key(k) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _before_send(event: Any, hint: Any) -> Any:
    # Arguments of jobs may hold personal data: drop frame locals and request bodies, scrub the rest.
    for exception in (event.get("exception") or {}).get("values", []):
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    event.pop("request", None)
    extra = event.get("extra") or {}
    for key in ("args", "kwargs", "dramatiq_message"):
        extra.pop(key, None)
    return scrub(event)


def _before_breadcrumb(crumb: Any, hint: Any) -> Any:
    return scrub(crumb)


def setup_sentry(settings: Settings) -> bool:
    """Initialise sentry-sdk when ``SENTRY_DSN`` is set; returns whether it is on."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        send_default_pii=False,
        include_local_variables=False,
        before_send=_before_send,
        before_breadcrumb=_before_breadcrumb,
        # Error log lines become breadcrumbs, not events: the dead-letter middleware sends the one event.
        integrations=[LoggingIntegration(level=logging.INFO, event_level=None)],
        default_integrations=True,
        auto_enabling_integrations=False,
        traces_sample_rate=0.0,
    )
    return True


#: Seconds between two writes of the log writer thread.
LOG_FLUSH_INTERVAL_S = 0.1
#: Records rendered and written in one go at most (a burst is written in several writes, not one huge string).
LOG_MAX_BATCH = 5000
#: Where a record keeps the structlog context of the thread that logged it (read on the writer thread).
_CONTEXT_ATTRIBUTE = "_structlog_context"


class _BatchingHandler(logging.Handler):
    """Hands records to the log writer unformatted, with the logging thread's structlog context attached.

    Job threads then never format, lock a stream or write: with eight CPU-bound threads, a blocking write per
    line made each thread wait for the GIL again after every log line (a convoy that cost a third of the
    throughput).
    """

    def __init__(self, batcher: TimedFlush[logging.LogRecord]) -> None:
        super().__init__()
        self.batcher = batcher

    def emit(self, record: logging.LogRecord) -> None:
        record.__dict__.setdefault(_CONTEXT_ATTRIBUTE, structlog.contextvars.get_contextvars())
        self.batcher.submit(record)


def _merge_record_context(_logger: Any, _method: str, event_dict: Any) -> Any:
    """``merge_contextvars`` for records formatted on the writer thread (its own context is empty)."""
    context = event_dict.pop(_CONTEXT_ATTRIBUTE, None)
    record = event_dict.get("_record")
    context = context or getattr(record, _CONTEXT_ATTRIBUTE, None) or {}
    for key, value in context.items():
        event_dict.setdefault(key, value)
    return event_dict


class _LogWriter:
    """Renders and writes the queued records every :data:`LOG_FLUSH_INTERVAL_S`, in one write per batch.

    A writer woken per record (``QueueListener``) took the GIL from the job threads hundreds of times a second;
    the batching is :class:`~app.timed_flush.TimedFlush`'s. A batch whose write fails on the stream and on the
    process's original stderr is dropped at once and counted in :attr:`dropped`: nothing is left to report it
    to, and retrying a broken stdout would hold the lines (and the memory) forever.
    """

    def __init__(self, stream: TextIO, formatter: logging.Formatter) -> None:
        self.stream = stream
        self.formatter = formatter
        self.dropped = 0
        self.batcher: TimedFlush[logging.LogRecord] = TimedFlush(
            self._write_batch,
            interval=LOG_FLUSH_INTERVAL_S,
            name="log-writer",
            max_batch=LOG_MAX_BATCH,
            max_attempts=1,
            on_drop=self._count_dropped,
        )
        self.handler = _BatchingHandler(self.batcher)

    def flush(self) -> None:
        """Write every record queued so far; a failed write drops its lines (see the class docstring)."""
        # A failed write is counted in self.dropped by the batcher's on_drop: there is nowhere to log it.
        with contextlib.suppress(OSError, ValueError):
            self.batcher.flush_now()

    def close(self) -> None:
        self.batcher.close()

    def _write_batch(self, records: Sequence[logging.LogRecord]) -> None:
        lines: list[str] = []
        for record in records:
            try:
                lines.append(self.formatter.format(record))
            except Exception as err:  # a broken record must not stop the logging of the others
                lines.append(f"unformattable log record from {record.name}: {type(err).__name__}: {err}")
        self._write("\n".join(lines) + "\n")

    def _write(self, text: str) -> None:
        # Dramatiq's worker processes log into a pipe to their parent (their sys.stderr) and close it when they
        # stop; what is logged after that goes to the process's original stderr instead of raising at exit.
        error: OSError | ValueError = ValueError("no open stream to write logs to")
        for stream in (self.stream, sys.__stderr__):
            if stream is None or getattr(stream, "closed", False):
                continue
            try:
                stream.write(text)
                stream.flush()
                return
            except (OSError, ValueError) as err:
                error = err
        raise error

    def _count_dropped(self, records: Sequence[logging.LogRecord], _error: BaseException) -> None:
        self.dropped += len(records)


_writer: _LogWriter | None = None


def flush_logs() -> None:
    """Make sure every line logged so far is written (worker shutdown; before a process exits)."""
    if _writer is not None:
        _writer.flush()


def _close_writer() -> None:
    if _writer is not None:
        _writer.close()


def _json_line(event: Any, **_: Any) -> str:
    """orjson instead of json: rendering was the writer thread's largest cost (it shares the GIL with jobs)."""
    return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class _JsonFormatter(logging.Formatter):
    """One JSON object per record, the same fields structlog's processor chain would give, a fifth of the CPU.

    The writer thread formats every line of the process while holding the GIL the job threads need, so the
    generic ``ProcessorFormatter`` (a record copy and a chain of processors per line) was worth replacing for
    the production format; ``LOG_FORMAT=console`` keeps structlog's renderer.
    """

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, dict):  # from a structlog logger: its chain has already run
            event = dict(record.msg)
        else:
            event = {"event": record.getMessage()}
            for key, value in record.__dict__.items():
                if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                    event[key] = value
            for key, value in (record.__dict__.get(_CONTEXT_ATTRIBUTE) or {}).items():
                event.setdefault(key, value)
        event.setdefault("level", record.levelname.lower())
        event.setdefault("logger", record.name)
        if "timestamp" not in event:
            created = dt.datetime.fromtimestamp(record.created, dt.UTC)
            event["timestamp"] = created.isoformat().replace("+00:00", "Z")
        if record.exc_info and "exception" not in event:
            event["exception"] = self.formatException(record.exc_info)
        return _json_line(event)


def setup_logging(settings: Settings) -> None:
    """structlog for our lines, stdlib (Dramatiq, SQLAlchemy) bridged into the same renderer.

    Records are rendered and written by one writer thread; the emitting thread only adds its context.
    """
    global _writer
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter: logging.Formatter = (
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _merge_record_context],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
        )
        if settings.log_format == "console"
        else _JsonFormatter()
    )
    if _writer is not None:
        _writer.close()
    else:
        atexit.register(_close_writer)
        # Dramatiq's worker processes end through multiprocessing, which skips atexit but runs its finalizers.
        multiprocessing.util.Finalize(None, _close_writer, exitpriority=0)
    _writer = _LogWriter(sys.stderr, formatter)
    # No caller lookup (a stack walk per record): the renderer prints no file, line or function.
    logging._srcfile = None  # type: ignore[attr-defined]
    root = logging.getLogger()
    root.handlers[:] = [_writer.handler]
    root.setLevel(settings.log_level)
    # Per-request lines of the HTTP clients, and WeasyPrint's rendering steps (six INFO lines per PDF).
    for noisy in ("urllib3", "httpx", "httpcore", "weasyprint.progress", "fontTools"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
