"""A scratch database and worker environment for a benchmark run: a fresh, migrated PostgreSQL schema when
PostgreSQL answers (else SQLite), and the variables a platform worker process runs with.

Shared by the bench scripts, which import it as ``bench.scratch`` once the repository root is on ``sys.path``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

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


def migrated_database() -> tuple[str, str | None]:
    """:func:`database_url`, brought to the latest schema; returns (url, schema)."""
    from app.db import migrate

    url, schema = database_url()
    migrate.upgrade(url)
    return url, schema


def worker_env(database_url: str, *, log_level: str) -> dict[str, str]:
    """The variables of a platform worker process on ``database_url``: JSON logs at ``log_level``, a metrics
    directory of its own, and no Sentry (``SENTRY_DSN`` is dropped from this process's environment too)."""
    os.environ.pop("SENTRY_DSN", None)
    return {
        "DATABASE_URL": database_url,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": log_level,
        "PROMETHEUS_MULTIPROC_DIR": str(Path(tempfile.mkdtemp(prefix="bench-prometheus-"))),
    }


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """A graceful stop of a benchmark's worker (started in a session of its own), killed if it hangs."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def simulator_url(command: list[str], root: str) -> Iterator[str]:
    """A simulator (``python -m app.testing.…_server --port 0``) run from checkout ``root``: its URL, the last
    word of the first line it prints; terminated at the end."""
    proc = subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": root}
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        proc.wait(10)


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """A bench script's parser, whose ``--help`` shows the script's docstring as written (its method, its
    figures)."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
