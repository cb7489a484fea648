"""Templates to email parts: Jinja2 with autoescape for HTML, CSS inlined with css-inline.

Each kind has ``<kind>.subject.txt``, ``<kind>.txt`` and ``<kind>.html`` under ``templates/email/``, extending
``base.txt``/``base.html``. Autoescape is on for ``.html`` only: user content (names, notice titles) can never
become markup, while the plain-text part and the subject stay literal. Mail clients drop ``<style>`` blocks,
hence the inlining.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.settings import PROJECT_ROOT

#: Where the email templates live.
TEMPLATES_DIR = PROJECT_ROOT / "templates" / "email"
#: Longest subject we send; longer ones are cut (mail clients show ~80 characters anyway).
MAX_SUBJECT = 200


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class EmailRenderer:
    """Renders every kind from one directory; safe to share between threads (Jinja2 and css-inline are)."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Templates ship with the code: checking every file's mtime on each render (three stats per email)
            # buys nothing in a worker, which is restarted on deploy anyway.
            auto_reload=False,
        )
        self.inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)

    def render(self, kind: str, context: Mapping[str, Any]) -> RenderedEmail:
        subject = self.env.get_template(f"{kind}.subject.txt").render(context)
        text = self.env.get_template(f"{kind}.txt").render(context)
        html = self.inliner.inline(self.env.get_template(f"{kind}.html").render(context))
        return RenderedEmail(subject=one_line(subject)[:MAX_SUBJECT], text=text, html=html)


def one_line(value: str) -> str:
    """Collapse whitespace: a subject is a header, and a newline in it would be a header injection."""
    return " ".join(value.split())


@functools.cache
def get_renderer() -> EmailRenderer:
    """The process's renderer (templates are compiled once and cached by Jinja2)."""
    return EmailRenderer()
