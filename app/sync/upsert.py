"""Storing a page of SAM.gov records: insert the new, update the changed, and write nothing for the unchanged.

Each record is normalized (:mod:`app.sync.normalize`); a malformed one is kept aside in
``sync_rejected_records`` with its reason and counted as invalid, never failing the page. The page's stored
hashes are read in one statement first, so a page that changed nothing costs one SELECT and no write at all
(the second sync of a day is mostly that). What is left is written in bulk:

- PostgreSQL: ``COPY`` into a temporary staging table (one per connection, emptied at commit), then one
  ``INSERT … SELECT … ON CONFLICT (notice_id) DO UPDATE … WHERE payload_hash differs``; ``RETURNING xmax = 0``
  tells inserts from updates.
- SQLite (the embedded ``make run`` set-up): the same ``ON CONFLICT … WHERE`` upsert through ``executemany``.

The ``WHERE`` on the conflict clause keeps the guarantee when two partitions meet the same notice at once: the
hash read first is an optimisation, the conflict clause is the rule. Callers give the connection of one
transaction per page, so a page is stored whole or not at all, and a retried page changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson
from sqlalchemy import Connection, Table, any_, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite

from app.db.models import Entity, Opportunity, SyncRejectedRecord
from app.db.types import utcnow
from app.sync.normalize import (
    NOTICE_ID,
    OPPORTUNITY_COLUMNS,
    EntityRow,
    OpportunityRow,
    Rejected,
    canonical_json,
    entity_row,
    opportunity_row,
)

logger = logging.getLogger(__name__)

OPPORTUNITIES: Table = Opportunity.__table__  # type: ignore[assignment]
ENTITIES: Table = Entity.__table__  # type: ignore[assignment]
REJECTED: Table = SyncRejectedRecord.__table__  # type: ignore[assignment]
#: The staging table of the PostgreSQL path: temporary, per connection, emptied at each commit.
STAGE = "sync_opportunities_stage"
#: Columns of OPPORTUNITY_COLUMNS that hold JSON (COPY needs them wrapped as JSONB).
JSON_COLUMNS = frozenset({"agency_names", "naics_codes", "resource_links", "raw"})


@dataclass
class Counts:
    """What a page (or a partition, or a run: they add up) did to the table."""

    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def upsert_opportunities(
    connection: Connection, records: Sequence[object], *, run_id: int | None = None
) -> Counts:
    """Store one page of opportunity records; returns its counts. ``connection`` is in a transaction.

    Records are hashed before they are normalized: an unchanged one (most of a re-sync) costs its hash and its
    share of one SELECT, nothing more."""
    counts = Counts(fetched=len(records))
    hashed: dict[str, tuple[object, bytes, str]] = {}
    malformed: list[object] = []
    for record in records:
        key = record.get("noticeId") if isinstance(record, dict) else None
        if isinstance(record, dict) and isinstance(key, str) and NOTICE_ID.match(key):
            canonical = canonical_json(record)
            # A notice repeated within the page: its last copy wins.
            hashed[key.lower()] = (record, canonical, hashlib.sha256(canonical).hexdigest())
        else:
            malformed.append(record)
    stored = _stored_hashes(connection, OPPORTUNITIES.c.notice_id, list(hashed))
    rows: dict[str, OpportunityRow] = {}
    rejected: list[dict[str, Any]] = []
    for record in malformed:
        rejected.append(_rejected(run_id, "opportunity", record, "noticeId", _reason(record)))
    for key, (record, canonical, digest) in hashed.items():
        if stored.get(key) == digest:
            continue
        try:
            rows[key] = opportunity_row(record, canonical=canonical, digest=digest)
        except Rejected as err:
            rejected.append(_rejected(run_id, "opportunity", record, "noticeId", str(err)))
    counts.invalid = len(rejected)
    if rejected:
        connection.execute(REJECTED.insert(), rejected)
    changed = list(rows.values())
    counts.unchanged = len(records) - counts.invalid - len(changed)
    if changed:
        if connection.dialect.name == "postgresql":
            inserted, updated = _copy_upsert(connection, changed)
        else:
            inserted, updated = _executemany_upsert(
                connection, OPPORTUNITIES, "notice_id", [r.columns for r in changed], stored
            )
        counts.inserted, counts.updated = inserted, updated
        counts.unchanged += len(changed) - inserted - updated  # lost a race to an equal write
    return counts


def upsert_entities(
    connection: Connection, records: Sequence[object], *, run_id: int | None = None
) -> Counts:
    """Store one page of entity records (at most a few dozen: the plain dialect upsert on both backends)."""
    counts = Counts(fetched=len(records))
    rows: dict[str, EntityRow] = {}
    rejected: list[dict[str, Any]] = []
    for record in records:
        try:
            row = entity_row(record)
        except Rejected as err:
            rejected.append(_rejected(run_id, "entity", record, "ueiSAM", str(err)))
            continue
        rows[row.uei] = row
    counts.invalid = len(rejected)
    if rejected:
        connection.execute(REJECTED.insert(), rejected)
    stored = _stored_hashes(connection, ENTITIES.c.uei, list(rows))
    changed = [row.columns for key, row in rows.items() if stored.get(key) != row.payload_hash]
    counts.unchanged = len(records) - counts.invalid - len(changed)
    if changed:
        now = utcnow()
        values = [{**columns, "updated_at": now, "synced_at": now} for columns in changed]
        counts.inserted, counts.updated = _executemany_upsert(connection, ENTITIES, "uei", values, stored)
        counts.unchanged += len(changed) - counts.inserted - counts.updated
    return counts


def _reason(record: object) -> str:
    """Why a record without a usable ``noticeId`` is refused (normalization says it in its words)."""
    try:
        opportunity_row(record)
    except Rejected as err:
        return str(err)
    return "noticeId is missing or not 32 hexadecimal characters"


def _stored_hashes(connection: Connection, key: Any, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    table = key.table
    if connection.dialect.name == "postgresql":
        # One array parameter: an expanding IN of a page's 1,000 ids cost ~25 ms of CPU to render and convert.
        where = key == any_(bindparam("ids", type_=postgresql.ARRAY(key.type)))
    else:
        where = key.in_(bindparam("ids", expanding=True))
    query = select(key, table.c.payload_hash).where(where)
    return {row[0]: row[1] for row in connection.execute(query, {"ids": ids})}


def _copy_upsert(connection: Connection, rows: Sequence[OpportunityRow]) -> tuple[int, int]:
    """PostgreSQL: COPY into the staging table, then one INSERT … ON CONFLICT … WHERE hash differs."""
    columns = ", ".join(OPPORTUNITY_COLUMNS)
    connection.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM opportunities WITH NO DATA"
        )
    )
    json_positions = [i for i, name in enumerate(OPPORTUNITY_COLUMNS) if name in JSON_COLUMNS - {"raw"}]
    raw_position = OPPORTUNITY_COLUMNS.index("raw")
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY {STAGE} ({columns}) FROM STDIN") as copy:
        for row in rows:
            values = list(row.values())
            # JSON columns go as JSON text (the server parses it into JSONB); the payload's text is the one its
            # hash was computed from, so it is not encoded twice.
            for position in json_positions:
                values[position] = orjson.dumps(values[position]).decode()
            values[raw_position] = row.raw_json
            copy.write_row(values)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in OPPORTUNITY_COLUMNS if name != "notice_id")
    result = connection.execute(
        text(
            f"INSERT INTO opportunities ({columns}, first_seen_at, updated_at) "
            f"SELECT {columns}, :now, :now FROM {STAGE} "
            f"ON CONFLICT (notice_id) DO UPDATE SET {updates}, updated_at = EXCLUDED.updated_at "
            "WHERE opportunities.payload_hash IS DISTINCT FROM EXCLUDED.payload_hash "
            "RETURNING (xmax = 0) AS inserted"
        ),
        {"now": utcnow()},
    )
    flags = [bool(flag) for (flag,) in result]
    connection.execute(text(f"TRUNCATE {STAGE}"))  # several pages may share one transaction
    inserted = sum(flags)
    return inserted, len(flags) - inserted


def _executemany_upsert(
    connection: Connection, table: Table, key: str, values: Sequence[dict[str, Any]], stored: dict[str, str]
) -> tuple[int, int]:
    """The dialect's ``INSERT … ON CONFLICT DO UPDATE … WHERE hash differs``, one executemany."""
    now = utcnow()
    rows = [{"updated_at": now, **v} for v in values]
    if "first_seen_at" in table.c:
        rows = [{**row, "first_seen_at": now} for row in rows]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    excluded = statement.excluded
    keep = {"first_seen_at", key}
    statement = statement.on_conflict_do_update(
        index_elements=[key],
        set_={name: excluded[name] for name in rows[0] if name not in keep},
        where=table.c.payload_hash != excluded.payload_hash,
    )
    connection.execute(statement, rows)
    inserted = sum(1 for v in values if v[key] not in stored)
    return inserted, len(values) - inserted


def _rejected(run_id: int | None, kind: str, record: object, id_field: str, reason: str) -> dict[str, Any]:
    payload = record if isinstance(record, dict) else {"value": repr(record)[:2000]}
    external = payload.get(id_field) if isinstance(record, dict) else None
    if kind == "entity" and isinstance(record, dict):
        registration = record.get("entityRegistration")
        external = registration.get(id_field) if isinstance(registration, dict) else None
    return {
        "run_id": run_id,
        "kind": kind,
        "external_id": str(external)[:64] if external is not None else None,
        "reason": reason,
        "payload": payload,
        "created_at": utcnow(),
    }


def chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """``items`` in lists of at most ``size``."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
