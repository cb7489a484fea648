"""Every metric declared in ``app/metrics.py`` is emitted by some module of ``app/``.

A declared metric is exported (as zero) whether or not anything sets it, so a dashboard cannot tell "never
happens" from "never measured"; README lists the metrics as facts. A metric counts as emitted when a module of
``app/`` other than ``app/metrics.py`` calls one of its emitting methods (or ``labels``, whose children are
then emitted), found with :mod:`ast`: ``metrics.NAME.inc()``, ``metrics.NAME.labels(...)``, or ``NAME.set(...)``
after ``from app.metrics import NAME``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping

from prometheus_client.metrics import MetricWrapperBase

import app.metrics
from tests.support.helpers import ROOT

METRICS_MODULE = "app.metrics"
#: Methods that emit a value (or select the labelled child that will).
EMITTING = frozenset(
    {"labels", "inc", "dec", "set", "observe", "time", "track_inprogress", "set_to_current_time"}
    | {"set_function"}
)


def declared_metrics() -> set[str]:
    """Module-level names of ``app.metrics`` bound to a metric object."""
    return {name for name, value in vars(app.metrics).items() if isinstance(value, MetricWrapperBase)}


def emitted_metrics(source: str) -> set[str]:
    """Names of ``app.metrics`` metrics that ``source`` calls an emitting method on."""
    tree = ast.parse(source)
    module_aliases: set[str] = set()  # names bound to the app.metrics module
    name_aliases: dict[str, str] = {}  # local name -> metric name imported from app.metrics
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "app":
            module_aliases |= {a.asname or a.name for a in node.names if a.name == "metrics"}
        elif isinstance(node, ast.ImportFrom) and node.module == METRICS_MODULE:
            name_aliases |= {a.asname or a.name: a.name for a in node.names}
        elif isinstance(node, ast.Import):
            module_aliases |= {a.asname for a in node.names if a.name == METRICS_MODULE and a.asname}
    emitted: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in EMITTING:
            continue
        target = node.func.value
        if isinstance(target, ast.Attribute) and _is_module(target.value, module_aliases):
            emitted.add(target.attr)
        elif isinstance(target, ast.Name) and target.id in name_aliases:
            emitted.add(name_aliases[target.id])
    return emitted


def _is_module(node: ast.expr, aliases: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in aliases
    # ``app.metrics.NAME`` after ``import app.metrics``
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "metrics"
        and isinstance(node.value, ast.Name)
        and node.value.id == "app"
    )


def never_emitted(declared: Iterable[str], sources: Mapping[str, str]) -> set[str]:
    emitted: set[str] = set()
    for source in sources.values():
        emitted |= emitted_metrics(source)
    return set(declared) - emitted


def app_sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for path in sorted((ROOT / "app").rglob("*.py"))
        if path != ROOT / "app" / "metrics.py"
    }


def test_every_declared_metric_is_emitted_by_the_app() -> None:
    declared = declared_metrics()
    assert declared, "no metric found in app/metrics.py: the test would check nothing"

    unused = never_emitted(declared, app_sources())

    assert not unused, (
        f"declared in app/metrics.py but emitted by no module of app/: {sorted(unused)}; "
        "remove them until the code that emits them exists (and from README's Observability list)"
    )


def test_the_check_tells_an_emitted_metric_from_a_merely_imported_one() -> None:
    sources = {
        "a.py": "from app import metrics\nchild = metrics.USED.labels('q')\n",
        "b.py": "from app.metrics import ALIASED as A\nA.inc()\n",
        "c.py": "import app.metrics\napp.metrics.FULL.observe(1.0)\n",
        "d.py": "from app.metrics import IMPORTED\nfrom app import metrics\nprint(IMPORTED, metrics.READ)\n",
        "e.py": "other.UNRELATED.inc()\n",
    }
    declared = {"USED", "ALIASED", "FULL", "IMPORTED", "READ", "UNRELATED"}

    assert never_emitted(declared, sources) == {"IMPORTED", "READ", "UNRELATED"}
