"""The INSERT that knows ``ON CONFLICT`` on the connection's backend (PostgreSQL or SQLite).

Both dialects spell ``on_conflict_do_nothing``/``on_conflict_do_update`` the same way, but each statement must
be built from its own dialect's ``insert``: this picks it from the connection, so an upsert is written once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(connection: Connection, table: Table) -> Any:
    """``INSERT INTO table`` with ``on_conflict_*`` available, for the backend ``connection`` is on."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
