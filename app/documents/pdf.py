"""HTML templates to PDF with WeasyPrint: the one place that imports it.

WeasyPrint is imported with this module (the documents actors import it at worker start), so its import cost,
Pango's font discovery and its CSS parsing of the user-agent stylesheet are paid once per process, not per job.
Templates live in ``templates/documents/`` and are rendered with autoescape: user data (notice titles, agency
names) cannot become markup in a PDF. Fonts are embedded (subsetted) by WeasyPrint; the stylesheet names fonts
that the Docker image and ``make`` install (DejaVu), so what a test reads with ``pdffonts`` is what ships.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import weasyprint
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.settings import PROJECT_ROOT

#: Where the document templates (and their stylesheet) live.
TEMPLATES_DIR = PROJECT_ROOT / "templates" / "documents"


@functools.cache
def environment() -> Environment:
    """The process's Jinja2 environment for documents (thread-safe; templates compiled once)."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html", "svg"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def render_html(template: str, context: Mapping[str, Any]) -> str:
    """The HTML of ``template`` (a name under ``templates/documents/``) with ``context``, user data escaped."""
    return environment().get_template(template).render(context)


def html_to_pdf(html: str, target: Path) -> int:
    """Lay ``html`` out and write it to ``target``; returns the page count. Relative URLs resolve in the
    templates directory (the stylesheet, images)."""
    document = weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR)).render()
    document.write_pdf(target)
    return len(document.pages)


def render_pdf(template: str, context: Mapping[str, Any], target: Path) -> int:
    """Render ``template`` to a PDF at ``target`` (normally a :class:`~app.documents.storage.DocumentOutput`'s
    ``temp_path``) and return its page count."""
    return html_to_pdf(render_html(template, context), target)
