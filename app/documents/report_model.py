"""A report, independent of its format: sections of typed rows, optional summary figures and a chart.

The report builders (:mod:`app.documents.report_data`) fill these; :mod:`app.documents.reports` renders the
same object as PDF (every section), XLSX (a sheet per section) or CSV (the primary section).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from app.documents.xlsx import Column, ColumnKind


@dataclass(frozen=True)
class Col:
    """One column of a report section or an export: its machine name (CSV/JSONL header), its human header
    (PDF, XLSX) and its type."""

    key: str
    header: str
    kind: ColumnKind = "text"
    width: float | None = None

    @property
    def column(self) -> Column:
        return Column(self.header, self.kind, self.width)


@dataclass(frozen=True)
class Section:
    title: str
    columns: tuple[Col, ...]
    rows: Sequence[Sequence[Any]]
    #: Short text shown under the title (what the rows are, their period).
    note: str = ""
    chart: Markup | None = None
    #: The table a CSV of the report contains.
    primary: bool = False


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    subtitle: str
    owner: str
    generated_at: dt.datetime
    #: (label, value) pairs shown on the cover.
    figures: tuple[tuple[str, str], ...] = ()
    sections: tuple[Section, ...] = field(default_factory=tuple)

    @property
    def primary(self) -> Section:
        return next((s for s in self.sections if s.primary), self.sections[0])
