"""HTML templates to PDF with WeasyPrint: the one place that imports it.

WeasyPrint is imported with this module (the documents actors import it at worker start), so its import cost,
Pango's font discovery and its CSS parsing of the user-agent stylesheet are paid once per process, not per job.
Templates live in ``templates/documents/`` and are rendered with autoescape: user data (notice titles, agency
names) cannot become markup in a PDF. Fonts are embedded (subsetted) by WeasyPrint; the stylesheet names fonts
that the Docker image and ``make`` install (DejaVu), so what a test reads with ``pdffonts`` is what ships.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import weasyprint
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint.text.fonts import FontConfiguration

from app.settings import PROJECT_ROOT

#: Where the document templates (and their stylesheet) live.
TEMPLATES_DIR = PROJECT_ROOT / "templates" / "documents"

# WeasyPrint logs every layout step at INFO; a worker would log a dozen lines per report.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


@functools.cache
def environment() -> Environment:
    """The process's Jinja2 environment for documents (thread-safe; templates compiled once)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html", "svg"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["display"] = display
    env.filters["percent_widths"] = percent_widths
    env.globals["numeric"] = NUMERIC_KINDS
    return env


#: Column kinds right-aligned in tables.
NUMERIC_KINDS = frozenset({"integer", "number", "currency", "percent"})


#: Characters a table row holds across an A4 portrait page at the stylesheet's 7.5 pt (180 mm of text), cell padding included.
LINE_CHARS = 105
#: Characters typed columns need whatever their ``Col.width`` (a date does not wrap; a datetime wraps once).
KIND_WIDTHS = {"date": 13, "datetime": 13, "currency": 16, "integer": 9, "number": 12, "percent": 9}
#: Fewest characters a text column gets (a NAICS code, a status).
MIN_TEXT = 11


def percent_widths(columns: Sequence[Any]) -> list[float]:
    """Each column's share of the table width: typed columns get what their values need, text columns share
    the rest in proportion to their ``width`` (so a wide table wraps text, never a date or an amount)."""
    kinds = [getattr(c, "kind", "text") for c in columns]
    fixed = sum(KIND_WIDTHS.get(kind, 0) for kind in kinds)
    texts = [
        float(getattr(c, "width", None) or 16)
        for c, kind in zip(columns, kinds, strict=True)
        if kind not in KIND_WIDTHS
    ]
    room = max(LINE_CHARS - fixed, MIN_TEXT * len(texts))
    scale = room / (sum(texts) or 1.0)
    chars = [
        float(KIND_WIDTHS[kind])
        if kind in KIND_WIDTHS
        else max(MIN_TEXT, float(getattr(c, "width", None) or 16) * scale)
        for c, kind in zip(columns, kinds, strict=True)
    ]
    total = sum(chars) or 1.0
    return [round(100 * width / total, 2) for width in chars]


def display(value: Any, kind: str = "text") -> str:
    """A cell as a reader expects it: ``$1,250,000.00``, ``2026-12-07``, ``2026-12-07 17:00``, ``1,204``."""
    if value is None or value == "":
        return ""
    if kind == "currency" and isinstance(value, int | float | Decimal):
        return f"${value:,.2f}"
    if kind == "integer" and isinstance(value, int | float | Decimal):
        return f"{value:,.0f}"
    if kind == "number" and isinstance(value, int | float | Decimal):
        return f"{value:,.2f}"
    if kind == "percent" and isinstance(value, int | float | Decimal):
        return f"{float(value):.1%}"
    if isinstance(value, dt.datetime):
        moment = value.astimezone(dt.UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


_local = threading.local()


def font_config() -> FontConfiguration:
    """This thread's font configuration, made once. WeasyPrint makes a new one per document when given none,
    and each leaves a few hundred kilobytes of fontconfig/Pango state behind (docs/documents.md "Memory")."""
    config: FontConfiguration | None = getattr(_local, "font_config", None)
    if config is None:
        config = _local.font_config = FontConfiguration()
    return config


def render_html(template: str, context: Mapping[str, Any]) -> str:
    """The HTML of ``template`` (a name under ``templates/documents/``) with ``context``, user data escaped."""
    return environment().get_template(template).render(context)


def html_to_pdf(html: str, target: Path) -> int:
    """Lay ``html`` out and write it to ``target``; returns the page count. Relative URLs resolve in the
    templates directory (the stylesheet, images)."""
    document = weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR)).render(font_config=font_config())
    document.write_pdf(target)
    return len(document.pages)


def render_pdf(template: str, context: Mapping[str, Any], target: Path) -> int:
    """Render ``template`` to a PDF at ``target`` (normally a :class:`~app.documents.storage.DocumentOutput`'s
    ``temp_path``) and return its page count."""
    return html_to_pdf(render_html(template, context), target)
