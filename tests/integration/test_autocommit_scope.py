"""autocommit_scope keeps one session and connection per thread, on real PostgreSQL: reused while healthy,
replaced after a failure, an age or a change of database, and given back when its thread ends."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy
from sqlalchemy import select, text

from app.db import session as db_session
from app.db.models import User
from app.db.session import autocommit_scope, engine_for
from app.settings import get_settings
from tests.integration.email.factories import add_user

pytestmark = pytest.mark.integration


def backend_pid() -> int:
    with autocommit_scope() as session:
        return int(session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def checked_out() -> int:
    pool = engine_for(get_settings().database_url, autocommit=True).pool
    return int(pool.checkedout())  # type: ignore[attr-defined]


def test_a_thread_reuses_its_connection_and_each_use_starts_clean(platform_env: dict[str, str]) -> None:
    user_id = add_user()
    with autocommit_scope() as session:
        first_pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        user = session.scalars(select(User).where(User.id == user_id)).one()
        assert user in session
    with autocommit_scope() as session:
        assert session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one() == first_pid
        assert user not in session and len(session.identity_map) == 0


def test_a_use_that_raises_gives_its_connection_up(platform_env: dict[str, str]) -> None:
    with autocommit_scope() as kept:
        kept.connection().exec_driver_sql("SELECT 1")
    assert checked_out() == 1  # held by this thread between uses
    with pytest.raises(RuntimeError), autocommit_scope() as session:
        assert session is kept
        raise RuntimeError("the job failed")
    assert checked_out() == 0  # back in the pool
    with autocommit_scope() as fresh:
        assert fresh is not kept
        assert fresh.connection().exec_driver_sql("SELECT 1").scalar_one() == 1


def test_a_broken_connection_fails_one_use_only(platform_env: dict[str, str]) -> None:
    victim = backend_pid()
    with engine_for(get_settings().database_url).connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        other.commit()
    with pytest.raises(sqlalchemy.exc.OperationalError), autocommit_scope() as session:
        session.connection().exec_driver_sql("SELECT 1")
    assert backend_pid() != victim


def test_nested_uses_share_the_session_and_an_inner_error_caught_outside_keeps_it(
    platform_env: dict[str, str],
) -> None:
    with autocommit_scope() as outer:
        with pytest.raises(KeyError), autocommit_scope() as inner:
            assert inner is outer
            raise KeyError("caught by the outer use")
        assert outer.connection().exec_driver_sql("SELECT 1").scalar_one() == 1
    assert checked_out() == 1


def test_the_connection_is_replaced_after_its_age(
    platform_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with autocommit_scope() as young:
        pass
    with autocommit_scope() as same:
        assert same is young
    monkeypatch.setattr(db_session, "HELD_CONNECTION_MAX_AGE_S", 0.0)
    with autocommit_scope() as still_young:
        assert still_young is young  # it keeps the age it was created with
    with pytest.raises(RuntimeError), autocommit_scope():
        raise RuntimeError("gives it up")
    with autocommit_scope() as short_lived:
        pass  # created with no time to live
    with autocommit_scope() as replaced:
        assert replaced is not short_lived
    assert checked_out() == 1


def test_a_thread_that_ends_gives_its_connection_back(platform_env: dict[str, str]) -> None:
    baseline = checked_out()
    held_meanwhile: list[int] = []

    def job() -> None:
        backend_pid()
        held_meanwhile.append(checked_out())

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert held_meanwhile == [baseline + 1]
    assert checked_out() == baseline


def test_a_failed_flush_caught_inside_a_use_does_not_poison_the_next(platform_env: dict[str, str]) -> None:
    with autocommit_scope() as session:
        session.add(User(id=1, email="a@example.com", name="A", timezone="UTC"))
        session.flush()
        session.add(User(id=1, email="b@example.com", name="B", timezone="UTC"))
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            session.flush()
    with autocommit_scope() as session:
        assert session.scalars(select(User.email).where(User.id == 1)).one() == "a@example.com"
