"""Templates to email parts: Jinja2 with autoescape for HTML, CSS inlined with css-inline.

Each kind has ``<kind>.subject.txt``, ``<kind>.txt`` and ``<kind>.html`` under ``templates/email/``, extending
``base.txt``/``base.html``. Autoescape is on for ``.html`` only: user content (names, notice titles) can never
become markup, while the plain-text part and the subject stay literal.

Mail clients drop ``<style>`` blocks, so the layout's stylesheet (``templates/email/email.css``) is inlined into
the ``style`` attributes. Which element gets which style depends on the markup alone, never on the data, so
:class:`InliningLoader` inlines it into each ``.html`` template's source once, when the template is loaded, and
not into every email: inlining held the GIL for a tenth of a busy email worker's time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.settings import PROJECT_ROOT

#: Where the email templates live.
TEMPLATES_DIR = PROJECT_ROOT / "templates" / "email"
#: The stylesheet inlined into every HTML template.
STYLESHEET = "email.css"
#: The Jinja tags of a template source (expressions, statements, comments).
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
#: Longest subject we send; longer ones are cut (mail clients show ~80 characters anyway).
MAX_SUBJECT = 200


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class TemplateStyleError(ValueError):
    """Inlining would change a template's Jinja tags (a ``<``, ``>`` or ``&`` inside a tag gets escaped)."""


class InliningLoader(FileSystemLoader):
    """Loads ``.html`` templates with the stylesheet already inlined into their markup.

    A child template is inlined as a fragment (its ``{% block %}`` tags stay text around the elements), the layout
    as a document. Selectors therefore match within one template and what it includes, which is how
    ``email.css`` is written. A template whose Jinja tags would not survive the HTML parser unchanged is refused
    when loaded, loudly, rather than rendered wrong.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        css = (directory / STYLESHEET).read_text(encoding="utf-8")
        self._inliner = css_inline.CSSInliner(
            keep_style_tags=False, load_remote_stylesheets=False, extra_css=css
        )
        self._css = css

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not template.endswith(".html"):
            return source, filename, uptodate
        if "<html" in source.lower():
            inlined = self._inliner.inline(source)
        else:
            inlined = self._inliner.inline_fragment(source, self._css)
        if _JINJA_TAG.findall(inlined) != _JINJA_TAG.findall(source):
            raise TemplateStyleError(f"{template}: inlining the styles would change its Jinja tags")
        return inlined, filename, uptodate


class EmailRenderer:
    """Renders every kind from one directory; safe to share between threads (Jinja2 is)."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.env = Environment(
            loader=InliningLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Templates ship with the code: checking every file's mtime on each render (three stats per email)
            # buys nothing in a worker, which is restarted on deploy anyway.
            auto_reload=False,
        )

    def render(self, kind: str, context: Mapping[str, Any]) -> RenderedEmail:
        subject = self.env.get_template(f"{kind}.subject.txt").render(context)
        text = self.env.get_template(f"{kind}.txt").render(context)
        html = self.env.get_template(f"{kind}.html").render(context)
        return RenderedEmail(subject=one_line(subject)[:MAX_SUBJECT], text=text, html=html)


def one_line(value: str) -> str:
    """Collapse whitespace: a subject is a header, and a newline in it would be a header injection."""
    return " ".join(value.split())


@functools.cache
def get_renderer() -> EmailRenderer:
    """The process's renderer (templates are compiled once and cached by Jinja2)."""
    return EmailRenderer()
