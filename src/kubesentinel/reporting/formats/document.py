"""The JSON form of a report (docs/report-schema.json, described in docs/reports.md).

The document is the report's dataclasses as JSON objects (field names kept), under a header
naming its schema, version and type; times are ns since the epoch, with ``*_time`` ISO 8601
companions for the main ones. ``ensure_ascii`` writes every non-ASCII and control character as
a ``\\uXXXX`` escape, so a bidi override from an alert cannot reorder what a viewer shows.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Final

from kubesentinel.models.report import IncidentReport, PeriodReport
from kubesentinel.runtime.incident_view import iso_time

__all__ = ["SCHEMA_ID", "document", "dumps"]

SCHEMA_ID: Final = "https://kubesentinel.dev/schemas/report-1.json"


def document(report: IncidentReport | PeriodReport) -> dict[str, Any]:
    body = asdict(report)
    version = body.pop("version")
    kind = "incident" if isinstance(report, IncidentReport) else "period"
    head: dict[str, Any] = {
        "$schema": SCHEMA_ID,
        "schema_version": version,
        "type": kind,
        "generated_time": iso_time(report.generated_ns),
    }
    if isinstance(report, IncidentReport):
        summary = body["summary"]
        summary["first_time"] = iso_time(report.summary.first_ns)
        summary["last_time"] = iso_time(report.summary.last_ns)
    else:
        body["from_time"] = iso_time(report.from_ns)
        body["to_time"] = iso_time(report.to_ns)
    return {**head, **body}


def dumps(report: IncidentReport | PeriodReport) -> str:
    return json.dumps(document(report), indent=2, ensure_ascii=True) + "\n"
