"""CSV the way spreadsheets read it safely: UTF-8 (optional BOM), RFC 4180 quoting, no live formulas.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice
and Google Sheets (``=cmd|' /C calc'!A0`` runs a program on old Excel): such text cells get a leading
apostrophe, the OWASP-recommended neutraliser, which the spreadsheet shows as text and hides. Numbers keep
their sign: only text values are touched, so ``-12.5`` stays a number.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import IO, Any

#: What starts a formula in the common spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: The byte-order mark Excel needs to read a CSV file as UTF-8.
BOM = "\ufeff"


def neutralise(text: str) -> str:
    """``'=cmd|...``: text a spreadsheet will show instead of evaluating."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_value(value: Any) -> Any:
    """The cell for ``value``: ISO dates, plain numbers, ``true``/``false``, joined lists, neutralised text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return neutralise(", ".join(str(item) for item in value))
    return neutralise(str(value))


class CsvWriter:
    """Writes a header and rows to a text stream opened with ``newline=""`` (RFC 4180: CRLF, quotes doubled)."""

    def __init__(self, stream: IO[str], header: Sequence[str], *, bom: bool = False) -> None:
        if bom:
            stream.write(BOM)
        self._writer = csv.writer(stream, dialect="excel", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        self._writer.writerow([csv_value(name) for name in header])
        self.rows = 0

    def append(self, values: Sequence[Any]) -> None:
        # Plain text and numbers (most cells) are written as they are; the rest goes through csv_value.
        self._writer.writerow(
            [
                value
                if value is None
                or (kind := type(value)) is int
                or kind is float
                or kind is Decimal
                or (kind is str and not value.startswith(FORMULA_PREFIXES))
                else csv_value(value)
                for value in values
            ]
        )
        self.rows += 1

    def extend(self, rows: Iterable[Sequence[Any]]) -> None:
        for values in rows:
            self.append(values)
