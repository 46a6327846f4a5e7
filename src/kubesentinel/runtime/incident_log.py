"""One log line when an incident opens or its severity rises, so an operator tailing the
monitor sees an attack as it is correlated, not only in ``incidents list`` later."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kubesentinel.models import Incident, Severity

log = logging.getLogger("kubesentinel.monitor")


class IncidentLog:
    """Remembers the severity of each open incident (dropped when it closes)."""

    def __init__(self) -> None:
        self._severity: dict[str, Severity] = {}

    def changed(self, incidents: Iterable[Incident]) -> list[str]:
        """Log the incidents that opened or escalated; returns their ids (a report is due)."""
        due: list[str] = []
        for incident in incidents:
            seen = self._severity.get(incident.id)
            if seen is None:
                _line("opened", incident)
                due.append(incident.id)
            elif incident.severity > seen:
                _line(f"escalated from {seen.label}", incident)
                due.append(incident.id)
            if incident.status == "closed":
                self._severity.pop(incident.id, None)
            else:
                self._severity[incident.id] = incident.severity
        return due

    def closed(self, incidents: Iterable[Incident]) -> None:
        for incident in incidents:
            self._severity.pop(incident.id, None)


def _line(what: str, incident: Incident) -> None:
    w = incident.workload
    rules = ", ".join(r.rule for r in incident.rules[:3])
    level = logging.WARNING if incident.severity >= Severity.HIGH else logging.INFO
    log.log(
        level,
        "incident %s %s: %s %s/%s/%s score %.1f (%s)",
        incident.id,
        what,
        incident.severity.label,
        w.namespace,
        w.kind,
        w.name,
        incident.risk_score,
        rules,
        extra={
            "incident": {
                "id": incident.id,
                "change": what,
                "severity": incident.severity.label,
                "risk_score": incident.risk_score,
                "workload": w.key,
                "rules": [r.rule for r in incident.rules],
            }
        },
    )
