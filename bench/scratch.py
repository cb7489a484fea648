"""A scratch database for a benchmark run: a fresh PostgreSQL schema when PostgreSQL answers, else SQLite.

Shared by the bench scripts, which import it as ``bench.scratch`` once the repository root is on ``sys.path``.
"""

from __future__ import annotations

import os
import tempfile
import uuid

PG_BASE_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def database_url() -> tuple[str, str | None]:
    """A fresh PostgreSQL schema if PostgreSQL answers, else a SQLite file; returns (url, schema)."""
    import sqlalchemy
    from sqlalchemy.exc import OperationalError

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(PG_BASE_URL, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError:
        return f"sqlite:///{tempfile.mkdtemp(prefix='bench-db-')}/jobs.db", None
    finally:
        engine.dispose()
    return f"{PG_BASE_URL}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str | None) -> None:
    """Drop what :func:`database_url` created (nothing for SQLite)."""
    if schema is None:
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(PG_BASE_URL, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()
