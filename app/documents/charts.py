"""Bar charts as inline SVG: drawn by WeasyPrint like any other vector, no image library, crisp at any zoom.

Labels are user data (agency names, NAICS titles) and are escaped; the result is :class:`markupsafe.Markup`
so the report template can embed it as is.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

#: Drawing size in CSS pixels; the stylesheet scales it to the column width.
WIDTH = 640
BAR_HEIGHT = 16
GAP = 6
LABEL_WIDTH = 220
VALUE_WIDTH = 70
MAX_LABEL = 38


def bar_chart(items: Sequence[tuple[str, float]], *, title: str) -> Markup:
    """A horizontal bar chart of ``(label, value)`` pairs in the given order (an empty one says so)."""
    top = 24
    height = top + max(1, len(items)) * (BAR_HEIGHT + GAP) + 4
    peak = max((value for _, value in items), default=0) or 1
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="14" font-size="13" font-weight="bold" fill="#1b1f24">{escape(title)}</text>',
    ]
    if not items:
        parts.append(f'<text x="0" y="{top + 12}" font-size="11" fill="#333">No data</text>')
    for index, (label, value) in enumerate(items):
        y = top + index * (BAR_HEIGHT + GAP)
        bar = max(1.0, span * float(value) / float(peak)) if value else 0.0
        short = label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 12}" text-anchor="end" font-size="11" fill="#333">{escape(short)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{bar:.1f}" height="{BAR_HEIGHT}" fill="#2f6fb0"/>'
            f'<text x="{LABEL_WIDTH + bar + 4:.1f}" y="{y + 12}" font-size="11" fill="#333">{_number(value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
