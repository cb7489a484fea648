"""Engines and sessions, one engine per URL per process.

SQLite (the embedded default) is shared by several processes, so it runs in WAL mode with a busy timeout;
PostgreSQL needs nothing special. A test points ``DATABASE_URL`` at its own schema with
``?options=-csearch_path%3D<schema>``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
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


@functools.cache
def _autocommit_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url, autocommit=True), expire_on_commit=False)


@contextmanager
def autocommit_scope() -> Iterator[Session]:
    """A session whose every statement commits on its own, durably, with no BEGIN or COMMIT round trip.

    For hot paths made of reads and single-statement writes that need no common transaction (an email's
    recipient load, its claim and its mark): a transaction there only adds two round trips per use.
    """
    from app.settings import get_settings

    session = _autocommit_factory(get_settings().database_url)()
    try:
        yield session
    finally:
        session.close()


def dispose_engines() -> None:
    """Close every pooled connection (tests switch schemas; forked workers must not share sockets)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _factory.cache_clear()
    _autocommit_factory.cache_clear()
