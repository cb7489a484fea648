"""export_data: each dataset and format read back with its reader; a large export keeps bounded memory."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tracemalloc

import orjson
import pytest
from openpyxl import load_workbook

import app.documents
from app.documents import exports
from app.jobs.documents import ExportFilters
from tests.integration.documents.reports_data import (
    FORMULA_TITLE,
    MARKUP_TITLE,
    UNICODE_NAME,
    seed_opportunities,
    seed_reports,
)

pytestmark = pytest.mark.integration


def _export(request_id: str, user_id: int, dataset: str, fmt: str, **kwargs: object) -> bytes:
    exports.export_data(request_id=request_id, user_id=user_id, dataset_name=dataset, fmt=fmt, **kwargs)  # type: ignore[arg-type]
    status = app.documents.status(request_id)
    assert status is not None and status.ready and status.progress == 100, status
    content = app.documents.read_bytes(request_id)
    assert content is not None and len(content) == status.size_bytes
    return content


def test_csv_export_round_trips_non_ascii_and_neutralises_formulas(docs_env: dict[str, str]) -> None:
    seeded = seed_reports()
    content = _export("exp-csv-0001", seeded.user_id, "opportunities", "csv")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))
    assert len(rows) == 10
    by_title = {row["title"]: row for row in rows}
    assert "'" + FORMULA_TITLE in by_title and FORMULA_TITLE not in by_title
    assert MARKUP_TITLE in by_title
    first = by_title[MARKUP_TITLE]
    assert first["award_amount"] == "1250000.50" and first["active"] == "true"
    assert dt.datetime.fromisoformat(first["response_deadline"]).tzinfo is not None
    proposals = _export("exp-csv-0002", seeded.user_id, "proposals", "csv", bom=True)
    assert proposals.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.DictReader(io.StringIO(proposals.decode("utf-8-sig"), newline="")))
    assert f"Proposal 0003 for {UNICODE_NAME}" in {row["title"] for row in parsed}
    assert "Not yours" not in {row["title"] for row in parsed}


def test_xlsx_export_typed_cells_and_filters(docs_env: dict[str, str]) -> None:
    seeded = seed_reports()
    content = _export(
        "exp-xlsx-0001",
        seeded.user_id,
        "saved_opportunities",
        "xlsx",
        filters=ExportFilters(set_aside=("SBA",)),
    )
    sheet = load_workbook(io.BytesIO(content))["Saved opportunities"]
    header = [cell.value for cell in sheet[1]]
    assert header[:3] == ["Saved (UTC)", "Notice ID", "Title"]
    rows = list(sheet.iter_rows(min_row=2))
    assert len(rows) == 3  # saved notices 0..5, odd ones are SBA
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:P{len(rows) + 1}"
    assert isinstance(rows[0][0].value, dt.datetime)
    assert isinstance(rows[0][6].value, dt.datetime) and rows[0][6].number_format == "yyyy-mm-dd"
    formula = next(row for row in rows if row[2].value == FORMULA_TITLE)
    assert formula[2].data_type == "s"
    assert formula[12].number_format == '"$"#,##0.00' and formula[12].value == pytest.approx(1250001.5)


def test_jsonl_export_one_object_per_line(docs_env: dict[str, str]) -> None:
    seeded = seed_reports()
    content = _export("exp-jsonl-001", seeded.user_id, "entities", "jsonl")
    objects = [orjson.loads(line) for line in content.splitlines()]
    assert objects == [
        {
            "uei": "ABCDEFGH1234",
            "cage_code": None,
            "legal_business_name": "Évora Systems Corp.",
            "registration_status": None,
            "registration_date": None,
            "expiration_date": None,
            "primary_naics": None,
            "naics_list": [],
        }
    ]
    opportunities = _export("exp-jsonl-002", seeded.user_id, "opportunities", "jsonl")
    first = orjson.loads(opportunities.splitlines()[0])
    assert first["award_amount"] == 1250000.5 and first["title"] == MARKUP_TITLE


def _peak_bytes(request_id: str, user_id: int) -> int:
    tracemalloc.start()
    try:
        exports.export_data(request_id=request_id, user_id=user_id, dataset_name="opportunities", fmt="xlsx")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_large_export_memory_does_not_grow_with_rows(
    docs_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches keep the test quick; the bound is structural (one batch in memory), not a figure: the
    # benchmark measures 100,000 rows with the real batch size.
    batch = 300
    monkeypatch.setattr(exports, "BATCH", batch)
    seeded = seed_reports(opportunities=0, proposals=0)
    seed_opportunities(3 * batch)
    small = _peak_bytes("exp-mem-small", seeded.user_id)
    seed_opportunities(15 * batch)  # the same notices plus many more: 5x the rows
    large = _peak_bytes("exp-mem-large", seeded.user_id)
    small_rows = app.documents.status("exp-mem-small")
    large_rows = app.documents.status("exp-mem-large")
    assert small_rows is not None and large_rows is not None
    assert (small_rows.row_count, large_rows.row_count) == (3 * batch, 15 * batch)
    # 5x the rows may not cost anywhere near 5x the memory (a list of every row would).
    assert large < small * 1.4, (small, large)


def test_progress_is_written_as_the_rows_stream(
    docs_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.documents import records, storage

    seeded = seed_reports(opportunities=0, proposals=0)
    seed_opportunities(1000)
    monkeypatch.setattr(exports, "BATCH", 100)
    monkeypatch.setattr(storage, "PROGRESS_INTERVAL_S", 0.0)
    seen: list[int] = []
    real = records.set_progress

    def observed(request_id: str, percent: int) -> None:
        real(request_id, percent)
        row = app.documents.status(request_id)
        assert row is not None and row.status == "running"
        seen.append(row.progress)

    monkeypatch.setattr(records, "set_progress", observed)
    _export("exp-progress-1", seeded.user_id, "opportunities", "csv")
    assert seen == sorted(seen) and len(seen) >= 5 and 0 < seen[0] < 50 and 50 < seen[-1] < 100, seen
