"""`kubesentinel incidents list` rendering: the table and the documented JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from kubesentinel.models import Incident, RiskReason, RuleCount, Severity, Workload
from kubesentinel.runtime.incident_view import (
    iso_time,
    render_incidents,
    top_rules,
    workload_label,
)

T0 = 1_739_178_940_698_757_000  # 2025-02-10T09:15:40.698757Z

ATTACK = Incident(
    id="3f2a9c0d1e4b5a67",
    workload=Workload("default", "prod", "Deployment", "web"),
    first_ns=T0,
    last_ns=T0 + 95_000_000_000,
    severity=Severity.HIGH,
    risk_score=64.0,
    reasons=(
        RiskReason(28.0, "highest Falco priority Warning"),
        RiskReason(16.0, "3 MITRE tactics in kill-chain order: execution -> credential_access"),
    ),
    rules=(
        RuleCount("Terminal shell in container", 3),
        RuleCount("Read sensitive file untrusted", 12),
        RuleCount("Unexpected outbound connection destination", 1),
        RuleCount("Drop and execute new binary in container", 1),
    ),
    tactics=("execution", "credential_access", "exfiltration"),
    techniques=("T1059", "T1555", "T1041"),
    event_count=17,
    event_ids=("e1", "e2"),
    posture=("KS-0001", "KS-0005"),
)
NOISE = Incident(
    id="00aa11bb22cc33dd",
    workload=Workload("edge", "", "Host", "node-1"),
    first_ns=T0,
    last_ns=T0,
    severity=Severity.LOW,
    risk_score=15.0,
    reasons=(RiskReason(15.0, "highest Falco priority Notice"),),
    rules=(RuleCount("Contact K8S API Server From Container", 1),),
    tactics=(),
    techniques=(),
    event_count=1,
    event_ids=("n1",),
    posture=(),
    status="closed",
)


def test_table() -> None:
    text = render_incidents([ATTACK, NOISE], "table")
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "WORKLOAD", "SEVERITY", "SCORE", "EVENTS", "FIRST", "LAST",
                                "TOP", "RULES", "TACTICS"]  # fmt: skip
    assert lines[1].split("  ")[0] == "3f2a9c0d1e4b5a67"
    for cell in ("prod/Deployment/web", "high", "64.0", "17", "2025-02-10T09:15:40Z",
                 "2025-02-10T09:17:15Z", "execution, credential_access, exfiltration"):  # fmt: skip
        assert cell in lines[1]
    # Most frequent rules first, ties in first-seen order, as many as fit, the rest counted.
    assert (
        "  Read sensitive file untrusted (12), Terminal shell in container (3), +2 more  "
    ) in lines[1]
    assert "edge:Host/node-1" in lines[2]
    assert lines[2].endswith("  -")
    assert lines[-1] == "2 incidents (1 high, 1 low); 1 open"
    # Columns line up: every row starts its SEVERITY cell at the same offset.
    offset = lines[0].index("SEVERITY")
    assert lines[1][offset:].startswith("high")
    assert lines[2][offset:].startswith("low")


def test_long_cells_are_clipped_in_the_table_only() -> None:
    long_name = "x" * 100
    wide = dataclasses.replace(ATTACK, workload=Workload("default", "prod", "Pod", long_name))
    row = render_incidents([wide], "table").splitlines()[1]
    assert f"prod/Pod/{'x' * 48}...  high" in row
    assert long_name in render_incidents([wide], "json")


def test_top_rules() -> None:
    assert top_rules(ATTACK, width=200) == (
        "Read sensitive file untrusted (12), Terminal shell in container (3), "
        "Unexpected outbound connection destination (1), +1 more"
    )
    assert top_rules(ATTACK, width=20) == "Read sensitive file untrusted (12), +3 more"
    assert top_rules(NOISE) == "Contact K8S API Server From Container (1)"


def test_empty_table() -> None:
    assert render_incidents([], "table") == "No incidents.\n"
    assert render_incidents([], "json") == "[]\n"


def test_table_escapes_control_characters() -> None:
    hostile = dataclasses.replace(ATTACK, rules=(RuleCount("evil\x1b[2J\nrule", 1),))
    text = render_incidents([hostile], "table")
    assert "\x1b" not in text
    assert "evil\\x1b[2J\\x0arule (1)" in text


def test_json_has_every_incident_field() -> None:
    text = render_incidents([ATTACK, NOISE], "json")
    documents = json.loads(text)
    assert len(text.splitlines()) == 4  # one compact object per line
    first = documents[0]
    assert list(first) == [
        "id", "status", "severity", "risk_score", "workload", "first_time", "first_ns",
        "last_time", "last_ns", "event_count", "rules", "tactics", "techniques", "reasons",
        "posture", "event_ids",
    ]  # fmt: skip
    covered = {"first_time", "last_time"} | set(first)
    assert {f.name for f in dataclasses.fields(Incident)} <= covered
    assert first["workload"] == {
        "key": "default/prod/Deployment/web",
        "cluster": "default",
        "namespace": "prod",
        "kind": "Deployment",
        "name": "web",
    }
    assert (first["first_time"], first["first_ns"]) == ("2025-02-10T09:15:40.698757000Z", T0)
    assert first["last_time"] == "2025-02-10T09:17:15.698757000Z"
    assert (first["severity"], first["risk_score"], first["status"]) == ("high", 64.0, "open")
    assert first["rules"][1] == {"rule": "Read sensitive file untrusted", "count": 12}
    assert first["reasons"][0] == {"points": 28.0, "reason": "highest Falco priority Warning"}
    assert (first["tactics"], first["posture"], first["event_ids"]) == (
        ["execution", "credential_access", "exfiltration"], ["KS-0001", "KS-0005"], ["e1", "e2"]
    )  # fmt: skip
    assert documents[1]["status"] == "closed"


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render_incidents([ATTACK], "xml")  # type: ignore[arg-type]


def test_helpers() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000000000Z"
    assert iso_time(T0, precise=False) == "2025-02-10T09:15:40Z"
    assert workload_label(Workload("default", "prod", "Job", "backup")) == "prod/Job/backup"
    assert workload_label(Workload("", "", "Host", "node-1")) == "Host/node-1"
