"""The process's one engine and the ways to use it per step: an ORM session, or a Core connection (in a
transaction, or in autocommit).

One engine (one pool) per database URL per process, and a process normally has one URL: every connection it
opens comes from that pool, so a worker process holds at most ``DATABASE_POOL_SIZE`` connections whatever its
thread count (docs/email.md, "Connections"). A thread checks a connection out for one step of a job and gives
it back at once; nothing is held while a job waits on something else (an HTTP call). When every connection is
busy for ``DATABASE_POOL_TIMEOUT_S``, the step fails with :class:`~app.errors.DatabaseBusy`, which is retried.

SQLite (the embedded default) is shared by several processes, so it runs in WAL mode with a busy timeout;
PostgreSQL needs nothing special. A test points ``DATABASE_URL`` at its own schema with
``?options=-csearch_path%3D<schema>``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy.exc
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.errors import DatabaseBusy

_engines: dict[str, Engine] = {}
#: Held while an engine is looked up or created: a worker's threads all start at once, and an engine created
#: twice would be a second pool.
_engines_lock = threading.Lock()

#: Connections are replaced after this many seconds (a server or proxy may drop older idle ones).
POOL_RECYCLE_S = 300


def engine_for(url: str) -> Engine:
    """The engine of ``url``, created once per process."""
    with _engines_lock:
        if url not in _engines:
            _engines[url] = _create(url)
        return _engines[url]


def _create(url: str) -> Engine:
    from app.settings import get_settings

    settings = get_settings()
    parsed = make_url(url)
    # No pre-ping: it costs a round trip per checkout. A connection that died meanwhile fails one statement
    # (SQLAlchemy then invalidates every older connection of the pool) and the step is retried.
    pool: dict[str, Any] = {
        "pool_size": settings.database_pool_size,
        "max_overflow": 0,
        "pool_timeout": settings.database_pool_timeout_s,
        "pool_recycle": POOL_RECYCLE_S,
    }
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, **pool)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        pool = {}  # an in-memory database lives in its one connection (SQLAlchemy's SingletonThreadPool)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **pool)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


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
    # Two threads may both build one at first (functools.cache does not lock); both bind the one engine.
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def _pool_wait_is_retryable() -> Iterator[None]:
    try:
        yield
    except sqlalchemy.exc.TimeoutError as err:
        raise DatabaseBusy(f"no database connection free within the pool timeout ({err})") from err


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session committed on success and rolled back on error: the unit of work of a service call.

    Its connection is checked out at the first statement and returned when the block ends.
    """
    from app.settings import get_settings

    session = _factory(get_settings().database_url)()
    try:
        with _pool_wait_is_retryable():
            yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def transaction() -> Iterator[Connection]:
    """A pooled connection in a transaction committed when the block ends (rolled back on error): for steps
    made of a few Core statements (an email's claim, its mark), returned to the pool right after."""
    with _pool_wait_is_retryable(), get_engine().begin() as connection:
        yield connection


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A pooled connection on which every statement commits by itself, returned to the pool right after: for
    steps whose statements are each atomic on their own (an email's user load and claim, a mark without other
    writes). It saves the two round trips of BEGIN and COMMIT per step, which psycopg makes separately."""
    with _pool_wait_is_retryable(), get_engine().connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


def dispose_engines() -> None:
    """Close every pooled connection (tests switch schemas; forked workers must not share sockets)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factory.cache_clear()
