"""The inline SVG timelines of the HTML report: numbers we compute, and text escaped here.

Every string put in the SVG passes ``printable`` then ``html.escape`` (quotes too), so an alert
holding ``</svg>`` or ``<script>`` stays text. No script, no external reference.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Final

from kubesentinel.models.report import PeriodRow, TimelineRow
from kubesentinel.reporting.formats.text import clip, printable, when

__all__ = ["incident_svg", "period_svg"]

WIDTH: Final = 960
LANE: Final = 22  # px per lane
LEFT: Final = 300  # px for the lane labels
LANES_CAP: Final = 14  # rules (or workloads) drawn in lanes of their own; the rest share one
_PRIORITY_COLOUR: Final = {
    "Emergency": "#7f0000", "Alert": "#b30000", "Critical": "#d7301f", "Error": "#ef6548",
    "Warning": "#fc8d59", "Notice": "#6a8fc7", "Informational": "#9ecae1", "Debug": "#c6dbef",
}  # fmt: skip
_SEVERITY_COLOUR: Final = {
    "critical": "#b30000", "high": "#e34a33", "medium": "#fc8d59", "low": "#6a8fc7",
}  # fmt: skip
OTHER: Final = "(other rules)"


def _text(value: str, limit: int = 46) -> str:
    return html.escape(clip(printable(value), limit), quote=True)


def _lanes(keys: Sequence[str]) -> dict[str, int]:
    order: dict[str, int] = {}
    for key in keys:
        if key not in order and len(order) < LANES_CAP:
            order[key] = len(order)
    return order


def _frame(labels: Sequence[str], height: int, start_ns: int, end_ns: int, title: str) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" '
        f'viewBox="0 0 {WIDTH} {height}" aria-label="{_text(title, 80)}">',
        f"<title>{_text(title, 80)}</title>",
    ]
    for n, label in enumerate(labels):
        y = 20 + n * LANE
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{y}" y2="{y}" class="lane"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{_text(label)}</text>')
    bottom = height - 8
    parts.append(f'<text x="{LEFT}" y="{bottom}">{_text(when(start_ns), 40)}</text>')
    parts.append(
        f'<text x="{WIDTH - 10}" y="{bottom}" text-anchor="end">{_text(when(end_ns), 40)}</text>'
    )
    return parts


def _x(time_ns: int, start_ns: int, end_ns: int) -> float:
    span = max(1, end_ns - start_ns)
    return round(LEFT + (WIDTH - 10 - LEFT) * (time_ns - start_ns) / span, 1)


def incident_svg(rows: Sequence[TimelineRow]) -> str:
    """One lane per rule (first seen first); a dot per timeline row, its area by count."""
    if not rows:
        return ""
    lanes = _lanes([row.rule for row in rows])
    labels = list(lanes)
    if any(row.rule not in lanes for row in rows):
        labels.append(OTHER)
    start, end = min(r.first_ns for r in rows), max(r.last_ns for r in rows)
    height = 20 + len(labels) * LANE + 24
    parts = _frame(labels, height, start, end, "Timeline of the incident's events by rule")
    for row in rows:
        lane = lanes.get(row.rule, len(labels) - 1)
        y = 20 + lane * LANE
        radius = round(min(9.0, 3.0 + 1.5 * math.log2(row.count)), 1)
        colour = _PRIORITY_COLOUR.get(row.priority, "#888888")
        x1, x2 = _x(row.first_ns, start, end), _x(row.last_ns, start, end)
        tip = f"{when(row.first_ns)}: {row.rule} x{row.count}"
        if x2 - x1 >= 2:
            parts.append(
                f'<line x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="{colour}" '
                f'stroke-width="4" stroke-linecap="round"/>'
            )
        parts.append(
            f'<circle cx="{x1}" cy="{y}" r="{radius}" fill="{colour}">'
            f"<title>{_text(tip, 200)}</title></circle>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def period_svg(rows: Sequence[PeriodRow], start_ns: int, end_ns: int) -> str:
    """One lane per workload (first seen first); a bar per incident, coloured by severity."""
    if not rows:
        return ""
    lanes = _lanes([row.workload for row in rows])
    labels = list(lanes)
    if any(row.workload not in lanes for row in rows):
        labels.append("(other workloads)")
    height = 20 + len(labels) * LANE + 24
    parts = _frame(labels, height, start_ns, end_ns, "Incidents of the period by workload")
    for row in rows:
        lane = lanes.get(row.workload, len(labels) - 1)
        y = 20 + lane * LANE
        x1 = _x(max(row.first_ns, start_ns), start_ns, end_ns)
        x2 = max(x1 + 4, _x(min(row.last_ns, end_ns), start_ns, end_ns))
        colour = _SEVERITY_COLOUR.get(row.severity, "#888888")
        tip = f"{row.id} {row.severity} {row.risk_score:.1f}: {row.workload}"
        parts.append(
            f'<rect x="{x1}" y="{y - 6}" width="{round(x2 - x1, 1)}" height="12" rx="3" '
            f'fill="{colour}"><title>{_text(tip, 200)}</title></rect>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
