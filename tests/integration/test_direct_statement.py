"""DirectStatement on real PostgreSQL (psycopg2, the autocommit pool): rows, errors and lost connections come out
as they would through SQLAlchemy's execution layer; SQLite takes SQLAlchemy's path."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import bindparam, insert, select, text

from app.db import migrate
from app.db.direct import DirectStatement
from app.db.models import EmailLog
from app.db.session import autocommit_scope, engine_for, session_scope
from app.db.types import utcnow
from app.settings import get_settings

pytestmark = pytest.mark.integration

_TABLE = EmailLog.__table__
ADD = DirectStatement(
    insert(_TABLE).values(
        idempotency_key=bindparam("key"),
        kind="welcome",
        status="claimed",
        attempts=1,
        claimed_at=bindparam("now"),
    )  # the literals travel as the statement's own parameters
)
READ = DirectStatement(
    select(_TABLE.c.idempotency_key, _TABLE.c.kind, _TABLE.c.attempts).where(
        _TABLE.c.idempotency_key == bindparam("key")
    )
)


def test_rows_come_back_as_dicts_and_literals_are_bound(platform_env: dict[str, str]) -> None:
    with autocommit_scope() as session:
        connection = session.connection()
        assert connection.dialect.driver == "psycopg2"
        ADD.execute(connection, {"key": "direct:1", "now": utcnow()})
        assert READ.first(connection, {"key": "direct:1"}) == {
            "idempotency_key": "direct:1",
            "kind": "welcome",
            "attempts": 1,
        }
        assert READ.first(connection, {"key": "direct:absent"}) is None


def test_a_driver_error_is_sqlalchemys_and_leaves_the_connection_usable(platform_env: dict[str, str]) -> None:
    with autocommit_scope() as session:
        connection = session.connection()
        ADD.execute(connection, {"key": "direct:dup", "now": utcnow()})
        with pytest.raises(sqlalchemy.exc.IntegrityError) as caught:
            ADD.execute(connection, {"key": "direct:dup", "now": utcnow()})
        assert caught.value.connection_invalidated is False
        assert "email_log" in str(caught.value) and "direct:dup" in str(caught.value)
        # autocommit: no aborted transaction is left behind
        assert READ.first(connection, {"key": "direct:dup"}) is not None


def test_a_lost_connection_is_invalidated_and_not_handed_out_again(platform_env: dict[str, str]) -> None:
    url = get_settings().database_url
    with autocommit_scope() as session:
        connection = session.connection()
        ADD.execute(connection, {"key": "direct:before", "now": utcnow()})
        victim = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with engine_for(url).connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
            other.commit()
        with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
            READ.first(connection, {"key": "direct:before"})
        assert caught.value.connection_invalidated is True
    with autocommit_scope() as session:
        connection = session.connection()
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != victim
        assert READ.first(connection, {"key": "direct:before"}) is not None


def test_sqlite_takes_sqlalchemys_path(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/direct.db"
    migrate.upgrade(url)
    engine = engine_for(url, autocommit=True)
    try:
        with engine.connect() as connection:
            ADD.execute(connection, {"key": "direct:lite", "now": utcnow()})
            assert READ.first(connection, {"key": "direct:lite"}) == {
                "idempotency_key": "direct:lite",
                "kind": "welcome",
                "attempts": 1,
            }
    finally:
        engine.dispose()


def test_a_statement_that_leaves_a_python_side_default_to_sqlalchemy_is_refused(
    platform_env: dict[str, str],
) -> None:
    # email_log.claimed_at has default=utcnow, which SQLAlchemy computes per execution
    relying = DirectStatement(
        insert(_TABLE).values(idempotency_key=bindparam("key"), kind="k", status="claimed")
    )
    with autocommit_scope() as session, pytest.raises(ValueError, match="claimed_at"):
        relying.execute(session.connection(), {"key": "direct:default"})


def test_it_runs_in_a_psycopg3_transaction_too_and_rolls_back_with_it(platform_env: dict[str, str]) -> None:
    """A reminder's mark runs in the main pool's transaction (psycopg 3), beside the user's update."""
    with autocommit_scope() as session:  # compiled for psycopg2 first
        ADD.execute(session.connection(), {"key": "direct:pg2", "now": utcnow()})
    with pytest.raises(RuntimeError), session_scope() as session:
        connection = session.connection()
        assert connection.dialect.driver == "psycopg"
        ADD.execute(connection, {"key": "direct:rolled-back", "now": utcnow()})
        assert READ.first(connection, {"key": "direct:rolled-back"}) is not None
        raise RuntimeError("the transaction fails")
    with session_scope() as session:
        connection = session.connection()
        assert READ.first(connection, {"key": "direct:rolled-back"}) is None
        ADD.execute(connection, {"key": "direct:pg3", "now": utcnow()})
    with autocommit_scope() as session:
        assert READ.first(session.connection(), {"key": "direct:pg3"}) is not None
