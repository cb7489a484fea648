"""Streaming XLSX sheets with openpyxl's write-only mode: constant memory whatever the row count.

Each sheet gets a bold, frozen header row, an autofilter over its data, set column widths, and typed cells:
dates and datetimes as real Excel dates, numbers as numbers, money in a currency format. A cell is never a
formula: a text value starting with ``=`` (what openpyxl would store as one) is written as text, which is
how a spreadsheet export is kept from running what a user typed.

Speed: per styled column one cell object is kept and refilled for each row (openpyxl's write-only writer
serialises a cell before the next row is appended), so a typed row costs about what a plain ``append`` does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

ColumnKind = Literal["text", "integer", "number", "currency", "date", "datetime", "percent"]

#: Excel number formats of the typed column kinds.
NUMBER_FORMATS: dict[str, str] = {
    "number": "#,##0.00",
    "currency": '"$"#,##0.00',
    "percent": "0.0%",
}
#: Dates and datetimes get openpyxl's own formats (``yyyy-mm-dd``, ``yyyy-mm-dd h:mm:ss``) when it binds them.
#: Default widths (characters) per kind when a column names none.
DEFAULT_WIDTHS: dict[str, float] = {"date": 12, "datetime": 17, "currency": 16, "integer": 10, "number": 12}
#: Characters XML 1.0 cannot carry (openpyxl refuses them); replaced rather than failing the export.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BAD_TITLE = re.compile(r"[\[\]:*?/\\]")
MAX_TITLE = 31
MAX_TEXT = 32_767


@dataclass(frozen=True)
class Column:
    """One column of a sheet: its header, how its values are typed, and its width in characters."""

    header: str
    kind: ColumnKind = "text"
    width: float | None = None


def new_workbook() -> Workbook:
    """A write-only workbook (no default sheet): rows go to disk as they are appended."""
    return Workbook(write_only=True)


def sheet_title(title: str) -> str:
    """A title Excel accepts: at most 31 characters, none of ``[]:*?/\\``."""
    return _BAD_TITLE.sub("-", title)[:MAX_TITLE] or "Sheet"


class SheetWriter:
    """Appends typed rows to one write-only sheet; :meth:`close` sets the autofilter over what was written."""

    def __init__(self, workbook: Workbook, title: str, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.rows = 0
        self.sheet: WriteOnlyWorksheet = workbook.create_sheet(sheet_title(title))
        for index, column in enumerate(self.columns, 1):
            width = (
                column.width
                or DEFAULT_WIDTHS.get(column.kind)
                or max(10.0, min(60.0, len(column.header) + 4))
            )
            self.sheet.column_dimensions[get_column_letter(index)].width = width
        self.sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for column in self.columns:
            cell = WriteOnlyCell(self.sheet, column.header)
            cell.font = bold
            header.append(cell)
        self.sheet.append(header)
        self._text = [i for i, c in enumerate(self.columns) if c.kind == "text"]
        self._styled = [
            (i, self._template(c), c.kind) for i, c in enumerate(self.columns) if c.kind in NUMBER_FORMATS
        ]
        self._plain = [
            (i, c.kind)
            for i, c in enumerate(self.columns)
            if c.kind != "text" and c.kind not in NUMBER_FORMATS
        ]

    def _template(self, column: Column) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet)
        cell.number_format = NUMBER_FORMATS[column.kind]
        return cell

    def append(self, values: Sequence[Any]) -> None:
        """Write one row; values are converted per column kind (see :func:`cell_value`).

        Plain text goes to openpyxl as is (it binds each value once); only text that needs cleaning or would
        be a formula, and typed columns (one reused cell each, its number format set once), become cells here.
        """
        row = list(values)
        if len(row) != len(self.columns):
            raise ValueError(f"row of {len(row)} values for {len(self.columns)} columns")
        for index in self._text:
            value = row[index]
            if value is None:
                continue
            if (
                type(value) is not str
                or value.startswith("=")
                or len(value) > MAX_TEXT
                or _ILLEGAL.search(value)
            ):
                row[index] = self._text_cell(cell_value(value, "text"))
        for index, plain_kind in self._plain:
            if row[index] is not None:
                row[index] = cell_value(row[index], plain_kind)
        for index, cell, kind in self._styled:
            value = row[index]
            if value is not None:
                cell.value = cell_value(value, kind)
                row[index] = cell
        self.sheet.append(row)
        self.rows += 1

    def _text_cell(self, text: str) -> Any:
        """Text that would be a formula (``=...``) as a text cell; any other text as itself."""
        if not text.startswith("="):
            return text
        cell = WriteOnlyCell(self.sheet, text)
        cell.data_type = "s"
        return cell

    def extend(self, rows: Iterable[Sequence[Any]]) -> None:
        for values in rows:
            self.append(values)

    def close(self) -> None:
        """Put the autofilter over the header and every row written (call before the workbook is saved)."""
        last = get_column_letter(max(1, len(self.columns)))
        self.sheet.auto_filter.ref = f"A1:{last}{self.rows + 1}"


def cell_value(value: Any, kind: ColumnKind) -> Any:
    """A value openpyxl stores with the right type: naive UTC datetimes, numbers as numbers, clean text."""
    if value is None:
        return None
    if kind == "text":
        text = value if isinstance(value, str) else _text(value)
        text = _ILLEGAL.sub("\ufffd", text)
        return text[:MAX_TEXT]
    if kind in ("date", "datetime"):
        if isinstance(value, dt.datetime):
            moment = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
            return moment.date() if kind == "date" else moment
        if isinstance(value, dt.date):
            return value
        return _text(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | Decimal):
        return value
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def save(workbook: Workbook, target: Path) -> None:
    """Write the workbook to ``target`` (a write-only workbook can be saved once)."""
    workbook.save(target)
