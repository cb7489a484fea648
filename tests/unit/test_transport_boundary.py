"""Only ``app/transport`` reads or writes Dramatiq's Redis keys.

The rest of the platform goes through the transport's functions (queue statistics, dead-letter queues, worker
liveness), so that a RabbitMQ implementation can sit beside the Redis one. Parsed with :mod:`ast`, every module of
``app/``, ``actors/`` and ``schedules/`` outside ``app/transport`` must neither call ``dramatiq_key`` nor hold a
string naming a key of Dramatiq's namespace (``"dramatiq:..."``, including f-strings that start with it).
"""

from __future__ import annotations

import ast

from app.constants import DRAMATIQ_NAMESPACE
from tests.support.helpers import ROOT

CHECKED = ("app", "actors", "schedules")
ALLOWED = ROOT / "app" / "transport"
PREFIX = f"{DRAMATIQ_NAMESPACE}:"


def layout_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for each call of ``dramatiq_key`` and each string naming a Dramatiq key in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name == "dramatiq_key":
                found.append((node.lineno, "dramatiq_key(...)"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(PREFIX):
            found.append((node.lineno, repr(node.value)))
    return found


def test_no_module_outside_the_transport_touches_dramatiqs_keys() -> None:
    offenders = []
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.is_relative_to(ALLOWED):
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{line}: {what}" for line, what in layout_uses(path.read_text())
            ]

    assert not offenders, "Dramatiq's Redis keys used outside app/transport:\n" + "\n".join(offenders)


def test_the_check_finds_calls_and_key_strings() -> None:
    source = (
        "from app.redis_client import dramatiq_key\n"
        "a = dramatiq_key('email.XQ')\n"
        "b = redis_client.dramatiq_key('x')\n"
        "c = f'dramatiq:{queue}.XQ'\n"
        "d = 'jobs:heartbeat'\n"
    )

    assert [line for line, _ in layout_uses(source)] == [2, 3, 4]
