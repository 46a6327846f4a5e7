"""Real stores for the report tests, built by the real monitor.

``sim``: the simulator's stream (``kubesentinel simulate``, seed 1, one hour) replayed through
``kubesentinel monitor`` with the posture of a real ``kubesentinel scan --format json`` of the
shipped examples. ``hostile``: a few alerts whose every string tries to break out of a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.models.report import IncidentReport, PeriodReport
from kubesentinel.reporting.build import build_incident_report
from kubesentinel.reporting.period import build_period_report
from kubesentinel.runtime.store.open import open_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "k8s-manifests"
SCHEMA = ROOT / "docs" / "report-schema.json"
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, where the simulations start
SECTIONS = ("summary", "timeline", "processes", "attack", "posture", "anomalies", "evidence",
            "containment", "related")  # fmt: skip  # the incident report's, in order

# Each string an attacker controls in an alert, aimed at every format at once: HTML and SVG
# markup, CDATA ends, Markdown tables, code spans and links, a terminal escape and a bidi
# override that would reverse what follows it.
HOSTILE = (
    "<script>alert(1)</script></svg><img src=x onerror=alert(2)>]]>| --- |"
    "`x` ``` [x](javascript:alert(3)) **b** https://evil.example \x1b[31m\u202eexe.txt"
)


@dataclass(frozen=True)
class Store:
    path: Path
    posture: Path | None


def _monitor(stream: Path, db: Path, posture: Path | None, *extra: str) -> None:
    args = ["monitor", "--source", f"file://{stream}", "--until-eof", "--store", str(db),
            "--no-k8s-lookup", *extra]  # fmt: skip
    if posture is not None:
        args += ["--posture", str(posture)]
    assert main(args) == 0


def scanned_posture(directory: Path) -> Path:
    posture = directory / "posture.json"
    code = main(["scan", "--path", str(EXAMPLES), "--format", "json", "--severity-threshold",
                 "low", "--output", str(posture), "--quiet"])  # fmt: skip
    assert code == 1  # the examples have findings
    return posture


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Store:
    directory = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--out", str(directory / "sim"), "--seed", "1"]) == 0
    posture = scanned_posture(directory)
    db = directory / "ks.db"
    _monitor(directory / "sim" / "falco.jsonl", db, posture)
    return Store(db, posture)


def incident_of(db: Path, name: str, severity: str | None = None) -> str:
    """The id of the highest-risk incident of the workload ``name``."""
    store = open_store(str(db), read_only=True)
    try:
        found = [
            i
            for i in store.list_incidents()
            if i.workload.name == name and (severity is None or i.severity.label == severity)
        ]
    finally:
        store.close()
    assert found, f"no incident on {name}"
    return max(found, key=lambda i: i.risk_score).id


def hostile_alerts() -> list[dict[str, object]]:
    base_ns = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
    alerts: list[dict[str, object]] = []
    for n in range(4):
        fields: dict[str, object] = {
            "evt.time": base_ns + n * 1_000_000_000,
            "k8s.ns.name": "prod",
            "k8s.pod.name": "web-7d9f8c6b5-x2x9z",
            "container.id": "3ad7b26ded6d",
            "container.image.repository": f"evil/{HOSTILE}",
            "container.image.tag": "1",
            "proc.name": f"sh{HOSTILE}",
            "proc.cmdline": f"sh -c '{HOSTILE}' #{n % 2}",
            "proc.pname": f"<b>parent</b>{HOSTILE}",
            "proc.pcmdline": f"parent {HOSTILE}",
            "proc.pid": 100 + n,
            "proc.ppid": 99,
            "fd.name": f"/tmp/{HOSTILE}" if n < 2 else f"10.0.0.1:4{n}->6.6.6.6:4444{HOSTILE}",
            "fd.type": "file" if n < 2 else "ipv4",
        }
        alerts.append({
            "time": f"2026-01-01T00:00:0{n}.000000000Z",
            "rule": f"Hostile rule {HOSTILE}",
            "priority": "Critical",
            "source": "syscall",
            "hostname": f"node-{HOSTILE}",
            "output": f"{HOSTILE} output",
            "tags": ["mitre_execution", "T1059", "T1611", f"tag{HOSTILE}"],
            "output_fields": fields,
        })  # fmt: skip
    return alerts


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Store:
    directory = tmp_path_factory.mktemp("hostile")
    stream = directory / "falco.jsonl"
    stream.write_text("".join(json.dumps(a) + "\n" for a in hostile_alerts()))
    db = directory / "ks.db"
    _monitor(stream, db, None)
    return Store(db, None)


def incident_report(store: Store, incident_id: str) -> IncidentReport:
    vault = open_store(str(store.path), read_only=True)
    try:
        return build_incident_report(vault, incident_id)
    finally:
        vault.close()


def period_report(store: Store) -> PeriodReport:
    """The report of the simulation's hour."""
    vault = open_store(str(store.path), read_only=True)
    try:
        return build_period_report(vault, START_NS, START_NS + 3600 * 10**9)
    finally:
        vault.close()
