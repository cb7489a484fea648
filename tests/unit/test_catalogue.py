"""The job catalogue is honest: every entry has an actor in ``actors/`` on the same queue, and the reverse.

An entry without an actor would let ``enqueue.send`` accept a job that every worker then dead-letters as an
unknown actor; an actor without an entry could not be enqueued by the helpers at all.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import dramatiq
import pytest

import actors
from app import enqueue
from app.errors import InvalidJob
from app.jobs import SPECS


def actor_modules() -> list[ModuleType]:
    """Every module of the ``actors`` package, imported (as each worker group imports its queue's one)."""
    return [importlib.import_module(f"actors.{info.name}") for info in pkgutil.iter_modules(actors.__path__)]


def declared_actors() -> dict[str, dramatiq.Actor[..., object]]:
    found: dict[str, dramatiq.Actor[..., object]] = {}
    for module in actor_modules():
        for value in vars(module).values():
            if isinstance(value, dramatiq.Actor):
                found[value.actor_name] = value
    return found


def test_the_actors_package_is_read_whole() -> None:
    assert {module.__name__ for module in actor_modules()} >= {
        "actors.email",
        "actors.documents",
        "actors.sync",
    }


def test_every_catalogue_entry_has_an_actor_on_its_queue_and_every_actor_an_entry() -> None:
    declared = {name: actor.queue_name for name, actor in declared_actors().items()}
    catalogue = {name: spec.queue for name, spec in SPECS.items()}
    assert declared == catalogue


def test_actors_take_their_limits_from_the_catalogue_and_are_bound_to_the_platform_broker() -> None:
    from app.broker import broker

    for name, actor in declared_actors().items():
        assert actor.options.get("time_limit") == SPECS[name].time_limit_ms, name
        assert actor.broker is broker, name


@pytest.mark.parametrize(
    ("actor", "kwargs"),
    [
        ("render_brochure", {"request_id": "rep-000042", "user_id": 42}),
        ("sync_the_universe", {}),
    ],
)
def test_a_job_without_an_actor_is_refused_at_the_call_site(actor: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidJob, match="unknown actor"):
        enqueue.job(actor, **kwargs)
