"""No module outside ``app/transport`` uses a private name of Dramatiq or of the SendGrid SDK.

Private names change without notice between minor releases; ``app/transport`` is the one place allowed to use
Dramatiq's, under a contract test and a version pin (docs/dramatiq.md "What the transport package replaces").
Everywhere else (``app/``, ``actors/``, ``schedules/``, ``bench/``), parsed with :mod:`ast`, this test fails on:

- an import of a private name, or from a private module, of ``dramatiq``, ``sendgrid`` or
  ``python_http_client`` (``from dramatiq.brokers.redis import _RedisConsumer``);
- ``obj._name`` (or ``getattr(obj, "_name")``) on an object that is not ``self``/``cls``, when ``_name`` is not
  defined anywhere in the project's own code (a function, class, assignment or attribute it sets): the project's
  code may use its own underscore names across modules, not a library's. Names known to be library-private
  (``_message``, ``_exception``, ...) fail even if the project happens to define an attribute of that name.
  Underscore names that are documented public APIs (named tuples, SQLAlchemy rows) are allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.helpers import ROOT

CHECKED = ("app", "actors", "schedules", "bench")
ALLOWED = ROOT / "app" / "transport"
LIBRARIES = ("dramatiq", "sendgrid", "python_http_client")
#: Private attributes of Dramatiq and the SendGrid SDK that code has reached for before: flagged whatever the
#: project defines (a project attribute ``_message`` must not make ``proxy._message`` look like its own).
KNOWN_PRIVATE = frozenset(
    {
        "_message",
        "_exception",
        "_max_unpack_size",
        "_max_unpack_size_val",
        "_RedisConsumer",
        "_dispatch",
        "_should_do_maintenance",
        "_scripts",
        "_MESSAGE",
        "_default_headers",
        "_build_request",
        "_make_request",
        "_client",
        "_url_path",
    }
)


#: Public APIs spelled with a leading underscore so as not to clash with field names: named tuples' ``_asdict``,
#: ``_replace``, ``_fields``, ``_make`` and SQLAlchemy ``Row._mapping``/``_tuple``/``_t`` (documented as public).
PUBLIC_UNDERSCORE = frozenset({"_asdict", "_replace", "_fields", "_make", "_mapping", "_tuple", "_t"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def checked_files() -> list[Path]:
    files = []
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if ALLOWED not in path.parents:
                files.append(path)
    return files


def project_defined_names(trees: Iterable[ast.AST]) -> set[str]:
    """Underscore names the project's own code defines: functions, classes, assigned names and attributes."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {name for name in names if _private(name)}


def violations(tree: ast.AST, path: str, own: set[str]) -> Iterator[Violation]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] in LIBRARIES:
                if any(_private(part) for part in parts):
                    yield Violation(path, node.lineno, f"import from private module {node.module}")
                for alias in node.names:
                    if _private(alias.name):
                        yield Violation(path, node.lineno, f"import of {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in LIBRARIES and any(_private(part) for part in parts):
                    yield Violation(path, node.lineno, f"import of private module {alias.name}")
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in PUBLIC_UNDERSCORE:
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr in KNOWN_PRIVATE or node.attr not in own:
                yield Violation(
                    path, node.lineno, f"private attribute .{node.attr} of {ast.unparse(node.value)}"
                )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and node.args[1].value not in PUBLIC_UNDERSCORE
        ):
            name = node.args[1].value
            if name in KNOWN_PRIVATE or name not in own:
                yield Violation(path, node.lineno, f"{node.func.id}(..., {name!r})")


def scan(sources: dict[str, str], own_extra: Iterable[ast.AST] = ()) -> list[Violation]:
    trees = {path: ast.parse(source, filename=path) for path, source in sources.items()}
    own = project_defined_names([*trees.values(), *own_extra])
    found: list[Violation] = []
    for path, tree in trees.items():
        found.extend(violations(tree, path, own))
    return found


def test_no_private_dramatiq_or_sdk_name_outside_the_transport_package() -> None:
    files = checked_files()
    assert any(p.name == "broker.py" for p in files) and not any(ALLOWED in p.parents for p in files)
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in files}
    # The transport package's own definitions count as the project's (other modules may call its helpers).
    transport = [ast.parse(p.read_text()) for p in sorted(ALLOWED.rglob("*.py"))]
    found = scan(sources, transport)
    assert not found, "private names used outside app/transport:\n" + "\n".join(map(str, found))


def test_the_rule_catches_what_it_is_for() -> None:
    # Given snippets that reach into Dramatiq and SDK internals, and ones that use the project's own names
    sources = {
        "a.py": "from dramatiq.brokers.redis import _RedisConsumer\n",
        "b.py": "import dramatiq._private_mod\n",
        "c.py": "def f(broker, message):\n    broker._max_unpack_size()\n    return message._message\n",
        "d.py": "def f(client):\n    client._default_headers['x'] = 1\n    return getattr(client, '_url_path')\n",
        "e.py": "def f(message):\n    return message._exception\n",
        # The project's own underscore names, used across modules, and self/cls access are fine
        "f.py": (
            "class Own:\n"
            "    def __init__(self):\n"
            "        self._pending = []\n"
            "    def _flush(self):\n"
            "        return self._pending, type(self).__name__\n"
            "def g(own, row):\n"
            "    return own._pending, own._flush(), row._mapping\n"
        ),
        # A project attribute named like a library-private one does not make the library's accessible
        "g.py": "class P:\n    def __init__(self):\n        self._message = 1\ndef h(proxy):\n    return proxy._message\n",
    }

    # When the rule scans them
    found = scan(sources)

    # Then every reach into a library is reported, and nothing of the project's own
    by_file: dict[str, list[str]] = {}
    for violation in found:
        by_file.setdefault(violation.path, []).append(violation.what)
    assert set(by_file) == {"a.py", "b.py", "c.py", "d.py", "e.py", "g.py"}, by_file
    assert len(by_file["c.py"]) == 2 and len(by_file["d.py"]) == 2
