"""Render a report as Markdown, HTML (Jinja2 templates in ``reporting/templates/``) or JSON.

Jinja2 is imported here, when a report is rendered, never on the CLI's start-up path. HTML
autoescapes everything (after ``printable``: control characters show as escapes); Markdown
escapes every value through ``md_text`` unless a template chose another filter (``fence``,
``code``), which the environment's ``finalize`` enforces. JSON is ``document.py``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from kubesentinel.models.report import IncidentReport, PeriodReport
from kubesentinel.reporting.formats import document, svg, text

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["EXTENSIONS", "FORMATS", "render"]

FORMATS: Final = ("markdown", "html", "json")
EXTENSIONS: Final = {"markdown": "md", "html": "html", "json": "json"}
TEMPLATES: Final = Path(__file__).resolve().parent.parent / "templates"


class _Markdown(str):
    """Text a Markdown filter has already made safe: ``finalize`` leaves it as it is."""

    __slots__ = ()


def render(report: IncidentReport | PeriodReport, fmt: str) -> str:
    if fmt == "json":
        return document.dumps(report)
    if fmt not in ("markdown", "html"):
        raise ValueError(f"unknown report format {fmt!r} (expected one of {', '.join(FORMATS)})")
    kind = "incident" if isinstance(report, IncidentReport) else "period"
    suffix = "md" if fmt == "markdown" else "html"
    template = _environment(fmt).get_template(f"{kind}.{suffix}.j2")
    return template.render(r=report, now_ns=report.generated_ns)


def _md_finalize(value: Any) -> Any:
    if value is None:
        return "-"
    if isinstance(value, _Markdown) or not isinstance(value, str):
        return value
    return text.md_text(value)  # an unfiltered string is untrusted text


def _html_finalize(value: Any) -> Any:
    from markupsafe import Markup

    if value is None:
        return "-"
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return text.printable(value)  # then autoescaped


@lru_cache(maxsize=2)
def _environment(fmt: str) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    html = fmt == "html"
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=html,  # noqa: S701 - Markdown escapes every value in finalize (md_text)
        undefined=StrictUndefined,
        finalize=_html_finalize if html else _md_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["when"] = text.when
    env.filters["age"] = text.age
    env.filters["clip"] = text.clip
    env.filters["tree_text"] = text.tree_text
    if html:
        from markupsafe import Markup

        env.filters["incident_svg"] = lambda rows: Markup(svg.incident_svg(rows))  # noqa: S704 - built escaped in svg.py
        env.filters["period_svg"] = lambda r: Markup(svg.period_svg(r.rows, r.from_ns, r.to_ns))  # noqa: S704 - built escaped in svg.py
    else:
        env.filters["md"] = lambda value: _Markdown(text.md_text(str(value)))
        env.filters["fence"] = lambda value, info="": _Markdown(text.fence(str(value), info))
        env.filters["raw"] = _Markdown  # our own fixed text (links we build from checked ids)
        # Our own formatting of numbers: nothing from an alert.
        env.filters["when"] = lambda value: _Markdown(text.when(value))
        env.filters["age"] = lambda value, now: _Markdown(text.age(value, now))
    return env
