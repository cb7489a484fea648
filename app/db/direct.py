"""A SQLAlchemy statement compiled once, run on the driver's cursor: for the few statements every email runs.

SQLAlchemy's execution layer (cache key, parameter processing, execution context, result metadata) cost about
as much CPU as the driver's own work for the claim and the mark, and in an eight-thread worker bound by the GIL
that CPU is the throughput: on the DBAPI cursor, CPU per email went to 0.84x (paired, docs/benchmarks.md).

The statements are still written with SQLAlchemy (one definition for both databases); only PostgreSQL takes
the direct path. What SQLAlchemy would have done around a failure is kept: driver errors come out as
SQLAlchemy's ``DBAPIError`` subclasses, and a lost connection is invalidated so the pool does not hand it out
again. What is given up: bind and result processors (parameters must be what the driver takes: str, int,
aware datetimes; results are the driver's values: psycopg2 decodes JSON and returns aware timestamps) and
SQLAlchemy's engine events for these statements.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, UpdateBase
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

#: Dialects whose statements run on the driver: named parameters, values that need no processing for our
#: columns. SQLite (the embedded default, never a hot path) keeps the whole SQLAlchemy path.
DIRECT_DIALECTS = frozenset({"postgresql"})


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: Values the statement carries itself (literals bound as parameters); the caller's parameters go over them.
    defaults: Mapping[str, Any]


class DirectStatement:
    """``statement`` run with :meth:`first` or :meth:`execute`, on the cursor where the dialect allows it."""

    def __init__(self, statement: Select[Any] | UpdateBase) -> None:
        self.statement = statement
        #: By (dialect, driver): psycopg2 and psycopg 3 (a mark in a reminder's transaction) render differently.
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def first(self, connection: Connection, parameters: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict of column name to value, or None."""
        if connection.dialect.name not in DIRECT_DIALECTS:
            row = connection.execute(self.statement, parameters).first()
            return None if row is None else dict(row._mapping)
        return self._run(connection, parameters, fetch=True)

    def execute(self, connection: Connection, parameters: Mapping[str, Any]) -> None:
        if connection.dialect.name not in DIRECT_DIALECTS:
            connection.execute(self.statement, parameters)
            return
        self._run(connection, parameters, fetch=False)

    def _compile(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        compiled = self._compiled.get(key)
        if compiled is None:
            sql = self.statement.compile(dialect=dialect)
            prefetched = [*sql.insert_prefetch, *sql.update_prefetch]
            if prefetched:
                # SQLAlchemy computes these per execution; compiled once, they would be sent as NULL.
                names = ", ".join(sorted(column.name for column in prefetched))
                raise ValueError(
                    f"a direct statement must set every column with a Python-side default: {names}"
                )
            compiled = self._compiled[key] = _Compiled(str(sql), dict(sql.params))
        return compiled

    def _run(
        self, connection: Connection, parameters: Mapping[str, Any], *, fetch: bool
    ) -> dict[str, Any] | None:
        compiled = self._compile(connection.dialect)
        values = {**compiled.defaults, **parameters}
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None, "a checked-out connection has a DBAPI connection"
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(compiled.sql, values)
            if not fetch or cursor.description is None:
                return None
            row = cursor.fetchone()
            return None if row is None else dict(zip([c[0] for c in cursor.description], row, strict=True))
        except connection.dialect.loaded_dbapi.Error as err:
            raise _wrapped(err, connection, cursor, compiled.sql, values) from err
        finally:
            with contextlib.suppress(Exception):  # a cursor of an invalidated connection may refuse to close
                cursor.close()


def _wrapped(err: Any, connection: Connection, cursor: Any, sql: str, values: Mapping[str, Any]) -> Exception:
    """What SQLAlchemy raises for ``err``, after invalidating the connection if the error means it is gone."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(err, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(err)
    wrapped: Exception = DBAPIError.instance(
        sql, dict(values), err, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )
    return wrapped
