"""`kubesentinel incidents list` rendering: the table and the documented JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from kubesentinel.models import Event, Incident, Priority, RiskReason, RuleCount, Severity, Workload
from kubesentinel.models.incident import ContextCounts
from kubesentinel.runtime.incident_view import (
    iso_time,
    render_incident,
    render_incidents,
    top_rules,
    workload_label,
)
from kubesentinel.runtime.store.interface import StoredEvent

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
        RuleCount("Terminal shell in container", 3, Priority.NOTICE),
        RuleCount("Read sensitive file untrusted", 12, Priority.WARNING),
        RuleCount("Unexpected outbound connection destination", 1, Priority.NOTICE),
        RuleCount("Drop and execute new binary in container", 1, Priority.CRITICAL),
    ),
    tactics=("execution", "credential_access", "exfiltration"),
    techniques=("T1059", "T1555", "T1041"),
    event_count=17,
    event_ids=("e1", "e2"),
    posture=("KS-0001", "KS-0005"),
    previous_id="0123456789abcdef",
    context=ContextCounts(telemetry=1, low_priority=2, repeat=4000),
    context_ids=("c1", "c2"),
)
NOISE = Incident(
    id="00aa11bb22cc33dd",
    workload=Workload("edge", "", "Host", "node-1"),
    first_ns=T0,
    last_ns=T0,
    severity=Severity.LOW,
    risk_score=15.0,
    reasons=(RiskReason(15.0, "highest Falco priority Notice"),),
    rules=(RuleCount("Contact K8S API Server From Container", 1, Priority.NOTICE),),
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
    assert lines[0].split() == ["ID", "WORKLOAD", "SEVERITY", "SCORE", "EVENTS", "CONTEXT",
                                "FIRST", "LAST", "TOP", "RULES", "TACTICS"]  # fmt: skip
    assert lines[1].split("  ")[0] == "3f2a9c0d1e4b5a67"
    for cell in ("prod/Deployment/web", "high", "64.0", " 17", " 4003", "2025-02-10T09:15:40Z",
                 "2025-02-10T09:17:15Z", "execution, credential_access, exfiltration"):  # fmt: skip
        assert cell in lines[1]
    # Highest priority first, then the most frequent, as many as fit, the rest counted.
    assert (
        "  Drop and execute new binary in container (1), Read sensitive file untrusted (12), "
        "+2 more  "
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
        "Drop and execute new binary in container (1), Read sensitive file untrusted (12), "
        "Terminal shell in container (3), +1 more"
    )
    assert top_rules(ATTACK, width=20) == "Drop and execute new binary in container (1), +3 more"
    assert top_rules(NOISE) == "Contact K8S API Server From Container (1)"


def test_empty_table() -> None:
    assert render_incidents([], "table") == "No incidents.\n"
    assert render_incidents([], "json") == "[]\n"


def test_table_escapes_control_characters() -> None:
    hostile = dataclasses.replace(
        ATTACK, rules=(RuleCount("evil\x1b[2J\nrule", 1, Priority.ERROR),)
    )
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
        "last_time", "last_ns", "previous_id", "event_count", "context", "rules", "tactics",
        "techniques", "reasons", "posture", "event_ids", "anomalies",
        "anomaly_count",
    ]  # fmt: skip
    # Every field but the write-path deltas; the context sample is in "context".
    covered = {"context_ids", "added_ids", "added_context"} | set(first)
    assert {f.name for f in dataclasses.fields(Incident)} <= covered
    assert first["previous_id"] == "0123456789abcdef"
    assert first["context"] == {
        "telemetry": 1, "low_priority": 2, "repeat": 4000, "sample_ids": ["c1", "c2"]
    }  # fmt: skip
    assert documents[1]["previous_id"] is None
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
    assert first["rules"][1] == {
        "rule": "Read sensitive file untrusted", "count": 12, "priority": "Warning"
    }  # fmt: skip
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


def stored(event_id: str, at_s: int, context: str | None = None, **changes: object) -> StoredEvent:
    time_ns = T0 + at_s * 1_000_000_000
    values: dict[str, object] = {
        "id": event_id, "time_ns": time_ns, "received_ns": time_ns,
        "rule": "Terminal shell in container", "priority": Priority.WARNING, "source": "syscall",
        "hostname": "node-1",
        "workload": ATTACK.workload, "pod": "web-0", "container_id": "3ad7b26ded6d",
        "container_image": "nginx:1.27", "tactics": (), "techniques": (), "tags": (),
        "output": "A shell was spawned", "fields": {"proc.name": "bash", "proc.cmdline": "bash -i"},
        "origin": "falco.jsonl:7",
    }  # fmt: skip
    values.update(changes)
    return StoredEvent(Event(**values), ATTACK.id, context, 12, 3456 + at_s, 789)  # type: ignore[arg-type]


SHOWN = [
    stored("e1", 0),
    stored("e2", 5, rule="Read sensitive file untrusted", fields={"proc.name": "cat"}),
    stored("c1", 1, "repeat", pod=None, container_id=None, container_image=None),
    stored("c2", 2, "low_priority", priority=Priority.INFORMATIONAL,
           fields={"proc.name": "x\x1b[31m", "proc.cmdline": ["not", "text"]}),
]  # fmt: skip


def test_show_table() -> None:
    text = render_incident(ATTACK, SHOWN, "table", next_id="fedcba9876543210")
    head, _, table = text.partition("\n\n")
    assert head.splitlines()[0] == "Incident 3f2a9c0d1e4b5a67 (open)"
    assert "  continues:    0123456789abcdef" in head
    assert "  continued by: fedcba9876543210" in head
    assert (
        "  events:       17 signals; 4003 context (telemetry 1, low priority 2, repeat 4000)"
        in head
    )
    assert "  rules:        Drop and execute new binary in container (Critical, 1); " in head
    assert "     +28.0  highest Falco priority Warning" in head
    lines = table.splitlines()
    assert lines[0].split() == ["TIME", "ROLE", "RULE", "PRIORITY", "PROCESS", "COMMAND", "LINE",
                                "CONTAINER", "EVIDENCE"]  # fmt: skip
    assert [line.split()[1] for line in lines[1:5]] == ["signal", "signal", "repeat", "low"]
    assert lines[1].split("  ")[0] == "2025-02-10T09:15:40.698757000Z"
    assert "bash -i" in lines[1]
    assert "3ad7b26ded6d (nginx:1.27)" in lines[1]
    assert lines[1].endswith("segment 12 @ 3456+789")
    assert "\x1b" not in text
    assert "x\\x1b[31m" in lines[4]
    assert '["not", "text"]' in lines[4]
    assert (
        lines[-1]
        == "2 signals, 2 context events (4001 more context events not shown: --all lists them)"
    )


def test_show_json() -> None:
    document = json.loads(render_incident(ATTACK, SHOWN, "json"))
    assert list(document) == ["incident", "next_id", "events", "context_not_shown"]
    assert document["incident"]["id"] == ATTACK.id
    assert (document["next_id"], document["context_not_shown"]) == (None, 4001)
    first, _, repeat, low = document["events"]
    assert first == {
        "id": "e1", "role": "signal", "time": "2025-02-10T09:15:40.698757000Z", "time_ns": T0,
        "rule": "Terminal shell in container", "priority": "Warning", "source": "syscall",
        "process": "bash", "cmdline": "bash -i", "pod": "web-0", "container_id": "3ad7b26ded6d",
        "container_image": "nginx:1.27", "hostname": "node-1", "origin": "falco.jsonl:7",
        "output": "A shell was spawned",
        "evidence": {"segment": 12, "offset": 3456, "length": 789, "ref": "segment 12 @ 3456+789"},
        "anomaly": None,
    }  # fmt: skip
    assert (repeat["role"], repeat["container_id"]) == ("repeat", None)
    assert (low["role"], low["process"], low["cmdline"]) == (
        "low_priority", "x\x1b[31m", '["not", "text"]'
    )  # fmt: skip


def test_show_without_events() -> None:
    assert render_incident(NOISE, [], "table").endswith("No stored events.\n")
    with pytest.raises(ValueError, match="unknown format"):
        render_incident(NOISE, [], "xml")  # type: ignore[arg-type]
