"""Pin the reporting package's public names, and that its templates ship with it."""

from __future__ import annotations

from importlib import resources

from kubesentinel.reporting import background, build, formats, output, period
from kubesentinel.reporting.formats import TEMPLATES


def test_reporting_exports() -> None:
    assert build.__all__ == ["RELATED_CAP", "build_incident_report", "integrity_message"]
    assert period.__all__ == ["ROWS_CAP", "TOP", "build_period_report"]
    assert formats.__all__ == ["EXTENSIONS", "FORMATS", "render"]
    assert output.__all__ == ["write_report"]
    assert background.__all__ == ["IncidentReporter"]


def test_the_templates_are_package_resources() -> None:
    shipped = resources.files("kubesentinel.reporting") / "templates"
    names = sorted(p.name for p in shipped.iterdir() if p.name.endswith(".j2"))
    assert names == [
        "_head.html.j2", "incident.html.j2", "incident.md.j2", "period.html.j2", "period.md.j2"
    ]  # fmt: skip
    assert TEMPLATES.is_dir()
