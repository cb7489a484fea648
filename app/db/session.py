"""Engines and sessions, one engine per URL per process.

SQLite (the embedded default) is shared by several processes, so it runs in WAL mode with a busy timeout;
PostgreSQL needs nothing special. A test points ``DATABASE_URL`` at its own schema with
``?options=-csearch_path%3D<schema>``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[tuple[str, bool], Engine] = {}


#: The driver of the autocommit pool on PostgreSQL (the rest of the platform uses psycopg 3; see
#: :func:`autocommit_url`).
AUTOCOMMIT_PG_DRIVER = "psycopg2"


def engine_for(url: str, *, autocommit: bool = False) -> Engine:
    """The engine of ``url``, created once per process; ``autocommit``: a second pool whose connections stay
    in autocommit (switching a shared pool's connection in and out of it costs CPU on every checkout), on
    the driver :func:`autocommit_url` picks."""
    key = (url, autocommit)
    if key not in _engines:
        _engines[key] = _create(url, autocommit=autocommit)
    return _engines[key]


def autocommit_url(url: str) -> str:
    """``url`` with psycopg2 as its driver when it names PostgreSQL: the autocommit pool carries an email's hot
    statements (user load with claim, mark), run by eight threads of a worker that is bound by the GIL.

    psycopg 3's C layer lets the GIL go around each libpq step of a statement (send, read, check busy, read the
    end: four to five times), psycopg2 once, around the whole blocking call; in such a worker every release
    is a hand-off to another thread and back. Measured paired, same code otherwise: CPU per email 0.87-0.90x
    (docs/benchmarks.md). Everything else (migrations, history's COPY, the admin) stays on psycopg 3, which
    the two dialects of SQLAlchemy make transparent to the statements.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.set(drivername=f"postgresql+{AUTOCOMMIT_PG_DRIVER}").render_as_string(hide_password=False)


def _create(url: str, *, autocommit: bool) -> Engine:
    if autocommit:
        url = autocommit_url(url)
    parsed = make_url(url)
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip per checkout on every job. A connection that died meanwhile fails one
    # statement (the job is retried; SQLAlchemy then drops the whole pool), and recycling bounds their age.
    return create_engine(url, pool_pre_ping=False, pool_recycle=300, pool_size=10, max_overflow=10, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def get_engine() -> Engine:
    """The engine of the configured ``DATABASE_URL``."""
    from app.settings import get_settings

    return engine_for(get_settings().database_url)


@functools.cache
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session committed on success and rolled back on error: the unit of work of a service call."""
    from app.settings import get_settings

    session = _factory(get_settings().database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: How long a thread keeps its autocommit connection (the pool's recycle age: connections do not outlive it).
HELD_CONNECTION_MAX_AGE_S = 300.0


@dataclass
class _HeldSession:
    session: Session
    connection: Connection
    url: str
    generation: int
    expires_at: float
    depth: int = 0

    def __del__(self) -> None:
        # A thread's locals are dropped when it ends: its connection goes back to the pool then, not to the
        # garbage collector (which SQLAlchemy warns about and can only discard).
        with contextlib.suppress(Exception):
            self.connection.close()


_held = threading.local()
#: Bumped by :func:`dispose_engines`: a thread's held session of an earlier generation is closed at its next use.
_generation = 0


@contextmanager
def autocommit_scope() -> Iterator[Session]:
    """A session whose every statement commits on its own, durably, with no BEGIN or COMMIT round trip.

    For hot paths made of reads and single-statement writes that need no common transaction (an email's
    recipient load, its claim and its mark): a transaction there only adds two round trips per use.

    Each thread keeps its session and the connection under it between uses, as Django keeps a connection per
    thread (``CONN_MAX_AGE``): creating a session and checking a connection out of the pool and back in, per
    email, cost an eight-thread worker about a tenth of its CPU (docs/benchmarks.md). What a use leaves is
    cleared when it ends (objects loaded or added); a use that raises closes both, and a connection found lost
    (invalidated) is replaced, so a connection that broke is not used again; both are replaced after
    :data:`HELD_CONNECTION_MAX_AGE_S`. Nested uses share them.
    """
    held = _held_session()
    held.depth += 1
    try:
        yield held.session
    except BaseException:
        if held.depth == 1:
            _release_held()
        raise
    finally:
        held.depth -= 1
        if held.depth == 0 and getattr(_held, "current", None) is held:
            if held.session.is_active:
                held.session.expunge_all()
            else:  # a flush failed and the error was caught inside the use: the session needs a rollback
                _release_held()


def _held_session() -> _HeldSession:
    from app.settings import get_settings

    url = get_settings().database_url
    held: _HeldSession | None = getattr(_held, "current", None)
    outdated = held is not None and (
        held.connection.invalidated  # lost during a use whose error was caught inside it
        or held.url != url
        or held.generation != _generation
        or time.monotonic() > held.expires_at
    )
    if held is not None and outdated and held.depth == 0:
        _release_held()
        held = None
    if held is None:
        connection = engine_for(url, autocommit=True).connect()
        held = _HeldSession(
            session=Session(bind=connection, expire_on_commit=False),
            connection=connection,
            url=url,
            generation=_generation,
            expires_at=time.monotonic() + HELD_CONNECTION_MAX_AGE_S,
        )
        _held.current = held
    return held


def _release_held() -> None:
    """Close this thread's held session and give its connection back (or drop it, if it is broken)."""
    held: _HeldSession | None = getattr(_held, "current", None)
    _held.current = None
    if held is not None:
        with contextlib.suppress(Exception):
            held.session.close()
        with contextlib.suppress(Exception):
            held.connection.close()


def dispose_engines() -> None:
    """Close every pooled connection (tests switch schemas; forked workers must not share sockets)."""
    global _generation
    _generation += 1
    _release_held()
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _factory.cache_clear()
