"""``export_data``: a dataset streamed from the database into CSV, XLSX or JSONL, in bounded memory.

Rows come through a server-side cursor (psycopg's named cursor, via SQLAlchemy's ``yield_per``) in batches of
``BATCH`` and go straight to the writer: CSV and JSONL to a buffered file, XLSX to openpyxl's write-only sheet,
which spools rows to a temporary file until the workbook is zipped. The process holds one batch at a time
whatever the row count (``tests/integration/documents/test_export_memory.py`` measures it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import func, select

from app.db.session import autocommit, transaction
from app.documents import storage, xlsx
from app.documents.csvout import CsvWriter
from app.documents.datasets import Dataset, dataset
from app.documents.storage import DocumentOutput
from app.email.content.common import get_user
from app.jobs.documents import ExportFilters

logger = logging.getLogger(__name__)

#: Rows per round trip of the server-side cursor (and between progress reports).
BATCH = 2000
#: Bytes of the file buffer of CSV and JSONL exports.
FILE_BUFFER = 1 << 20


def export_data(
    *,
    request_id: str,
    user_id: int,
    dataset_name: str,
    fmt: str,
    filters: ExportFilters | None = None,
    bom: bool = False,
) -> None:
    """Export ``dataset_name`` as ``user_id`` sees it into the file of ``request_id`` (done once per request)."""
    if storage.completed(request_id) is not None:
        logger.info("export already written", extra={"request_id": request_id})
        return
    chosen = filters or ExportFilters()
    params = {"dataset": dataset_name, "filters": chosen.model_dump(mode="json"), "bom": bom}
    with storage.produce(request_id, kind="export", fmt=fmt, user_id=user_id, params=params) as out:
        with autocommit() as conn:
            get_user(conn, user_id)
        data = dataset(dataset_name, user_id=user_id, filters=chosen)
        out.row_count = write(data, fmt, out, bom=bom)


def count_rows(data: Dataset) -> int:
    with autocommit() as conn:
        return int(conn.execute(select(func.count()).select_from(data.query.subquery())).scalar_one())


def stream_rows(data: Dataset) -> Iterator[Sequence[Any]]:
    """The dataset's rows, fetched ``BATCH`` at a time through a server-side cursor inside one transaction."""
    with transaction() as conn:
        result = conn.execution_options(yield_per=BATCH).execute(data.query)
        for partition in result.partitions():
            yield from partition


def write(data: Dataset, fmt: str, out: DocumentOutput, *, bom: bool = False) -> int:
    """Write every row of ``data`` to ``out.temp_path``; returns the row count."""
    total = count_rows(data)
    if fmt == "csv":
        return _write_csv(data, out, total, bom=bom)
    if fmt == "jsonl":
        return _write_jsonl(data, out, total)
    if fmt == "xlsx":
        return _write_xlsx(data, out, total)
    raise ValueError(f"unknown export format {fmt!r}")  # the argument schema allows none other


def _progress(out: DocumentOutput, done: int, total: int) -> None:
    if done % BATCH == 0 and total:
        out.progress(100 * done / total)


def _write_csv(data: Dataset, out: DocumentOutput, total: int, *, bom: bool) -> int:
    with out.temp_path.open("w", encoding="utf-8", newline="", buffering=FILE_BUFFER) as stream:
        writer = CsvWriter(stream, data.keys, bom=bom)
        for row in stream_rows(data):
            writer.append(row)
            _progress(out, writer.rows, total)
        return writer.rows


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write_jsonl(data: Dataset, out: DocumentOutput, total: int) -> int:
    keys = data.keys
    rows = 0
    option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NAIVE_UTC
    with out.temp_path.open("wb", buffering=FILE_BUFFER) as stream:
        for row in stream_rows(data):
            stream.write(
                orjson.dumps(dict(zip(keys, row, strict=True)), default=_json_default, option=option)
            )
            rows += 1
            _progress(out, rows, total)
    return rows


def _write_xlsx(data: Dataset, out: DocumentOutput, total: int) -> int:
    workbook = xlsx.new_workbook()
    sheet = xlsx.SheetWriter(workbook, data.title, [field.column for field in data.fields])
    for row in stream_rows(data):
        sheet.append(row)
        _progress(out, sheet.rows, total)
    sheet.close()
    out.progress(99)
    xlsx.save(workbook, out.temp_path)
    return sheet.rows


__all__ = ["BATCH", "count_rows", "export_data", "stream_rows", "write"]
