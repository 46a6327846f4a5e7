"""The incidents of a period -> PeriodReport: counts, the top incidents, one row each.

Incidents are those with a signal in [from, to] (their span overlaps it), read from the
incident rows only, and checked against the state their segments sealed
(``verify_incident_states``, as ``incidents list`` does); no event is read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Final

from kubesentinel.errors import ReportError
from kubesentinel.models import Incident, Severity
from kubesentinel.models.report import REPORT_VERSION, Count, PeriodReport, PeriodRow
from kubesentinel.reporting.build import integrity_message
from kubesentinel.runtime.incident_view import iso_time, top_rules, workload_label
from kubesentinel.runtime.store.interface import VaultStore

__all__ = ["ROWS_CAP", "TOP", "build_period_report"]

ROWS_CAP: Final = 1000  # incident rows listed; the counts cover them all
TOP: Final = 10  # the highest-risk incidents, and entries per count table


def build_period_report(
    store: VaultStore,
    from_ns: int,
    to_ns: int,
    *,
    namespace: str | None = None,
    now_ns: int | None = None,
) -> PeriodReport:
    """ReportError when no incident of the store falls in the period."""
    found = [
        incident
        for incident in store.list_incidents(since_ns=from_ns, namespace=namespace)
        if incident.first_ns <= to_ns
    ]
    if not found:
        where = f" in namespace {namespace!r}" if namespace else ""
        raise ReportError(
            f"no incident in {store.name} from {iso_time(from_ns, precise=False)} to "
            f"{iso_time(to_ns, precise=False)}{where}",
            hint="`kubesentinel incidents list --since ...` shows when incidents happened",
        )
    integrity = store.verify_incident_states([incident.id for incident in found])
    oldest_first = sorted(found, key=lambda i: (i.first_ns, i.id))
    rules: Counter[str] = Counter()
    for incident in found:
        for rule in incident.rules:
            rules[rule.rule] += rule.count
    severities = Counter(i.severity for i in found)
    ranked = sorted(found, key=lambda i: (-i.risk_score, -i.severity, i.first_ns))
    return PeriodReport(
        version=REPORT_VERSION,
        generated_ns=time.time_ns() if now_ns is None else now_ns,
        store=store.name,
        from_ns=from_ns,
        to_ns=to_ns,
        namespace=namespace,
        integrity_problem=integrity_message(
            integrity.problem_count, [str(p) for p in integrity.problems]
        ),
        incidents=len(found),
        by_severity=tuple(
            Count(level.label, severities[level]) for level in sorted(Severity, reverse=True)
        ),
        by_namespace=_top(Counter(i.workload.namespace for i in found).items()),
        by_workload=_top(Counter(workload_label(i.workload) for i in found).items()),
        by_rule=_top(rules.items()),
        by_tactic=_top(Counter(t for i in found for t in i.tactics).items()),
        top=tuple(_row(i) for i in ranked[:TOP]),
        rows=tuple(_row(i) for i in oldest_first[:ROWS_CAP]),
        cap=ROWS_CAP,
    )


def _top(pairs: Iterable[tuple[str, int]]) -> tuple[Count, ...]:
    ordered = sorted(pairs, key=lambda pair: (-pair[1], pair[0]))
    return tuple(Count(key, count) for key, count in ordered[:TOP])


def _row(incident: Incident) -> PeriodRow:
    return PeriodRow(
        id=incident.id,
        severity=incident.severity.label,
        risk_score=incident.risk_score,
        status=incident.status,
        workload=workload_label(incident.workload),
        first_ns=incident.first_ns,
        last_ns=incident.last_ns,
        signals=incident.event_count,
        rules=top_rules(incident),
        tactics=incident.tactics,
    )
