"""The scenario simulator: deterministic, in Falco's real JSON layout, true to Falco's rules
files, with labels that match the stream and manifests the real scanner reads as promised."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesentinel.models import Priority, Severity
from kubesentinel.runtime.simulate import (
    DEFAULT_START_NS,
    SCENARIOS,
    Simulation,
    SimWorkload,
    simulate,
    write_simulation,
)
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths
from tests.conftest import shared_path

NS = 1_000_000_000
FALCO_KEYS = ["hostname", "output", "output_fields", "priority", "rule", "source", "tags", "time"]
RULE_FILES = (
    "falco_rules.yaml",
    "falco-incubating_rules.yaml",
    "falco-sandbox_rules.yaml",
    "k8s_audit_rules.yaml",
)
# Falco's default falco.yaml (0.41+) appends this to syscall rules' output.
APPEND_SYSCALL = (
    "container_id=%container.id container_name=%container.name "
    "container_image_repository=%container.image.repository "
    "container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name k8s_ns_name=%k8s.ns.name"
)
FIELD = re.compile(r"%([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+(?:\[[^\]]*\])?)")
RFC3339_NS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
RANDOM = "[bcdfghjklmnpqrstvwxz2456789]"


def ns_of(text: str) -> int:
    second = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(second.timestamp()) * NS + int(text[20:29])


def pod_of(alert: dict[str, Any]) -> str | None:
    fields = alert["output_fields"]
    if alert["source"] == "k8s_audit":
        return fields.get("ka.target.name") if fields.get("ka.target.resource") == "pods" else None
    pod: str | None = fields.get("k8s.pod.name")
    return pod


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(seed=7, hours=1.0)


@pytest.fixture(scope="module")
def lines(sim: Simulation) -> list[str]:
    return list(sim.lines())


@pytest.fixture(scope="module")
def alerts(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def falco_rules() -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for name in RULE_FILES:
        for item in yaml.safe_load(shared_path("falco", "rules", name).read_text()):
            if isinstance(item, dict) and "rule" in item:
                rules[item["rule"]] = item
    return rules


# --- Determinism -------------------------------------------------------------------------------


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    counts = [write_simulation(simulate(seed=3, hours=0.5), tmp_path / d) for d in ("a", "b")]
    assert counts[0] == counts[1]
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    for name in files:
        if (tmp_path / "a" / name).is_file():
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_stream_can_be_read_again(sim: Simulation, lines: list[str]) -> None:
    assert list(sim.lines()) == lines
    assert [json.loads(line) for line in lines[:50]] == list(sim.alerts)[:50]


def test_another_seed_gives_another_stream_of_the_same_cluster(lines: list[str]) -> None:
    other = simulate(seed=8, hours=1.0)
    assert list(other.lines())[:100] != lines[:100]
    assert other.manifests == simulate(seed=7, hours=1.0).manifests


# --- Falco's layout ----------------------------------------------------------------------------


def test_every_line_is_compact_json_in_falco_key_order(lines: list[str]) -> None:
    for line in lines:
        alert = json.loads(line)
        keys = FALCO_KEYS if alert["source"] != "internal" else [
            k for k in FALCO_KEYS if k != "tags"  # Falco writes internal alerts without tags
        ]  # fmt: skip
        assert list(alert) == keys, line
        assert json.dumps(alert, separators=(",", ":"), ensure_ascii=False) == line
        fields = alert["output_fields"]
        assert list(fields) == sorted(fields), line  # nlohmann's sorted keys
        assert alert.get("tags", []) == sorted(alert.get("tags", []))  # a std::set in Falco
        assert RFC3339_NS.fullmatch(alert["time"]), line
        assert fields["evt.time"] == ns_of(alert["time"])
        assert Priority.parse(alert["priority"]).label == alert["priority"]


def test_output_text_starts_with_time_and_priority(alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        if alert["source"] == "internal":
            assert alert["output"] == "Falco metrics snapshot"
            continue
        prefix = f"{alert['time'][11:29]}: {alert['priority']} "
        assert alert["output"].startswith(prefix), alert["output"][:60]


def test_alerts_are_sorted_and_inside_the_window(
    sim: Simulation, alerts: list[dict[str, Any]]
) -> None:
    times = [ns_of(a["time"]) for a in alerts]
    assert times == sorted(times)
    assert sim.start_ns <= times[0]
    assert times[-1] < sim.end_ns
    assert {a["source"] for a in alerts} == {"syscall", "k8s_audit", "internal"}


def test_every_rule_is_a_real_falco_rule_with_its_priority_tags_and_output(
    alerts: list[dict[str, Any]], falco_rules: dict[str, dict[str, Any]]
) -> None:
    seen: set[str] = set()
    for alert in alerts:
        if alert["source"] == "internal":
            assert alert["rule"] == "Falco internal: metrics snapshot"
            continue
        rule = falco_rules.get(alert["rule"])
        assert rule is not None, f"{alert['rule']!r} is not in the Falco rules files"
        assert rule.get("enabled", True) is not False
        assert Priority.parse(alert["priority"]) == Priority.parse(rule["priority"])
        assert alert["tags"] == sorted(rule["tags"])
        assert alert["source"] == rule.get("source", "syscall")
        template = rule["output"].strip()
        if alert["source"] == "syscall":
            template += " " + APPEND_SYSCALL
        names = FIELD.findall(template)
        pattern = "".join(
            re.escape(text) if i % 2 == 0 else "(.*?)"
            for i, text in enumerate(FIELD.split(template))
        )
        body = alert["output"].split(": ", 1)[1].split(" ", 1)[1]
        match = re.fullmatch(pattern, body)
        assert match, f"{alert['rule']}: {body}"
        fields = alert["output_fields"]
        assert set(fields) == {*names, "evt.time"}
        for name, text in zip(names, match.groups(), strict=True):
            value = fields[name]
            assert text == ("<NA>" if value is None else str(value)), (alert["rule"], name)
        seen.add(alert["rule"])
    assert len(seen) >= 15


def test_output_fields_are_those_real_falco_alerts_carry(alerts: list[dict[str, Any]]) -> None:
    """Real alerts in the same layout (Falco >= 0.41, container fields appended) name the same
    fields for the same rule."""
    ours: dict[str, set[str]] = {}
    for alert in alerts:
        ours.setdefault(alert["rule"], set(alert["output_fields"]) - {"evt.time"})
    compared = set()
    for line in shared_path("falco", "samples", "alerts.jsonl").read_text().splitlines():
        real = json.loads(line)
        if "k8s_ns_name=" not in real["output"] or real["rule"] not in ours:
            continue
        assert set(real["output_fields"]) - {"evt.time", "evt.time.iso8601"} == ours[real["rule"]]
        compared.add(real["rule"])
    assert len(compared) >= 5


# --- Cluster realism ---------------------------------------------------------------------------


def _by_key(sim: Simulation) -> dict[tuple[str, str], SimWorkload]:
    return {(w.namespace, w.name): w for w in sim.workloads}


def _workload_of(sim: Simulation, namespace: str, pod: str) -> tuple[SimWorkload, re.Match[str]]:
    for w in sim.workloads:
        if w.namespace != namespace:
            continue
        patterns = {
            "Deployment": rf"{w.name}-([4-9bcdf]{{6,10}})-{RANDOM}{{5}}",
            "StatefulSet": rf"{w.name}-(\d+)",
            "DaemonSet": rf"{w.name}-{RANDOM}{{5}}",
            "CronJob": rf"{w.name}-(\d{{8}})-{RANDOM}{{5}}",
        }
        match = re.fullmatch(patterns[w.kind], pod)
        if match:
            return w, match
    raise AssertionError(f"{namespace}/{pod} follows no workload's pod naming")


def test_pod_names_follow_kubernetes_naming(sim: Simulation, alerts: list[dict[str, Any]]) -> None:
    hashes: dict[str, set[str]] = {}
    daemon_nodes: dict[str, set[str]] = {}
    for alert in alerts:
        if alert["source"] != "syscall":
            continue
        fields = alert["output_fields"]
        w, match = _workload_of(sim, fields["k8s.ns.name"], fields["k8s.pod.name"])
        assert fields["container.name"] == w.container
        assert fields["container.image.repository"] == w.repository
        assert fields["container.image.tag"] == w.tag
        assert alert["hostname"] in sim.nodes
        if w.kind == "Deployment":
            hashes.setdefault(w.name, set()).add(match.group(1))
        elif w.kind == "DaemonSet":
            daemon_nodes.setdefault(fields["k8s.pod.name"], set()).add(alert["hostname"])
        elif w.kind == "CronJob":  # the Job is named after its schedule time in unix minutes
            every = int(w.schedule.split()[0].removeprefix("*/"))
            scheduled = int(match.group(1)) * 60 * NS
            assert int(match.group(1)) % every == 0
            assert 0 < ns_of(alert["time"]) - scheduled < 10 * every * 60 * NS
    assert all(len(nodes) == 1 for nodes in daemon_nodes.values())  # one pod per node
    assert len({next(iter(n)) for n in daemon_nodes.values()}) == len(sim.nodes)
    assert len(hashes["cart"]) == 2  # a rollout: a new ReplicaSet hash names new pods


def test_cron_jobs_run_on_schedule(alerts: list[dict[str, Any]]) -> None:
    runs = sorted(
        {int(a["output_fields"]["k8s.pod.name"].split("-")[2])
         for a in alerts
         if a["output_fields"].get("k8s.pod.name", "").startswith("dependency-audit-")}
    )  # fmt: skip
    assert len(runs) >= 10
    assert all((b - a) % 5 == 0 for a, b in pairwise(runs))  # schedule "*/5 * * * *"


def test_fixed_events_k8s_audit_and_metrics(sim: Simulation, alerts: list[dict[str, Any]]) -> None:
    rules = Counter((a["source"], a["rule"]) for a in alerts)
    assert rules["k8s_audit", "Disallowed K8s User"] >= 2  # GitOps rollouts
    assert rules["k8s_audit", "Attach/Exec Pod"] >= 3  # developers' exec sessions + the attack
    snapshots = Counter(a["hostname"] for a in alerts if a["source"] == "internal")
    assert snapshots == dict.fromkeys(sim.nodes, 4)  # every 15 minutes on every node
    rollout = next(a for a in alerts if a["rule"] == "Disallowed K8s User")
    assert rollout["output_fields"]["ka.target.resource"] == "deployments"


def test_background_rate_follows_events_per_s() -> None:
    quiet = sum(1 for _ in simulate(seed=2, hours=0.25, events_per_s=0).lines())
    busy = sum(1 for _ in simulate(seed=2, hours=0.25, events_per_s=40).lines())
    assert 0.9 * 40 * 900 < busy - quiet < 1.1 * 40 * 900
    assert quiet < 100  # only the attacks, sessions, rollouts and snapshots


def test_start_ns_moves_the_whole_stream() -> None:
    later = simulate(seed=2, hours=0.25, start_ns=DEFAULT_START_NS + 86400 * NS)
    times = [a["time"] for a in later.alerts]
    assert times[0].startswith("2026-01-02T00:")
    assert all(label.start_ns > DEFAULT_START_NS + 86400 * NS for label in later.labels)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="hours"):
        simulate(hours=0.1)
    with pytest.raises(ValueError, match="events_per_s"):
        simulate(events_per_s=-1)


# --- Labelled scenarios ------------------------------------------------------------------------


def test_scenarios_appear_with_the_promised_rules_in_time_order(
    sim: Simulation, alerts: list[dict[str, Any]]
) -> None:
    assert tuple(label.id for label in sim.labels) == SCENARIOS
    for label in sim.labels:
        hits = [
            a
            for a in alerts
            if pod_of(a) == label.pod
            and a["rule"] in label.rules
            and label.start_ns <= ns_of(a["time"]) <= label.end_ns
        ]
        assert [(ns_of(a["time"]), a["rule"]) for a in hits] == [
            (s.time_ns, s.rule) for s in label.steps
        ], label.id
        assert tuple(dict.fromkeys(a["rule"] for a in hits)) == label.rules
        tactics = [t[6:] for a in hits for t in a["tags"] if t.startswith("mitre_")]
        assert tuple(dict.fromkeys(tactics)) == label.tactics
        for alert in hits:
            if alert["source"] == "syscall":
                assert alert["hostname"] == label.node
                assert alert["output_fields"]["k8s.ns.name"] == label.workload.namespace
            assert Priority.parse(alert["priority"]) in {s.priority for s in label.steps}


def test_scenarios_walk_the_tactics_the_issue_names(sim: Simulation) -> None:
    labels = {label.id: label for label in sim.labels}
    rce = labels["web-rce"]
    assert rce.workload.key == "shop/Deployment/storefront"
    assert {"execution", "credential_access", "exfiltration"} <= set(rce.tactics)
    assert rce.tactics.index("execution") < rce.tactics.index("credential_access")
    assert labels["cron-miner"].workload.kind == "CronJob"
    assert "impact" in labels["cron-miner"].tactics
    assert "privilege_escalation" in labels["container-escape"].tactics
    exfil = labels["exec-exfiltration"]
    assert exfil.rules[0] == "Attach/Exec Pod"
    assert exfil.steps[0].source == "k8s_audit"
    assert exfil.pod == "postgres-0"
    for scenario in ("web-rce", "cron-miner", "container-escape"):
        assert not labels[scenario].workload.hardened
    assert labels["exec-exfiltration"].workload.hardened  # stolen credentials beat hardening


def test_written_files_agree_with_the_simulation(sim: Simulation, tmp_path: Path) -> None:
    counts = write_simulation(sim, tmp_path)
    written = (tmp_path / "falco.jsonl").read_text(encoding="utf-8")
    assert written.endswith("\n")
    assert counts["alerts"] == written.count("\n") == sum(1 for _ in sim.lines())
    assert counts["scenarios"] == len(SCENARIOS)
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert [s["id"] for s in labels["scenarios"]] == list(SCENARIOS)
    assert [s["rules"] for s in labels["scenarios"]] == [list(x.rules) for x in sim.labels]
    assert labels["scenarios"][0]["start_ns"] == sim.labels[0].start_ns
    assert ns_of(labels["scenarios"][0]["start"]) == sim.labels[0].start_ns
    assert sorted(p.name for p in (tmp_path / "manifests").iterdir()) == sorted(sim.manifests)
    assert counts["manifests"] == len(sim.manifests)
    readme = (tmp_path / "README.md").read_text()
    assert all(scenario in readme for scenario in SCENARIOS)
    assert "falco.jsonl" in readme


# --- Manifests and the static scanner ----------------------------------------------------------


def test_manifests_scan_to_the_promised_posture(sim: Simulation, tmp_path: Path) -> None:
    for name, text in sim.manifests.items():
        (tmp_path / name).write_text(text)
    result = scan_paths([str(tmp_path)], builtin_catalogue(), ScanOptions())
    assert result.errors == []
    by_workload: dict[tuple[str, str, str], list[Severity]] = {}
    for finding in result.findings:
        key = (finding.obj.namespace or "default", finding.obj.kind, finding.obj.name)
        by_workload.setdefault(key, []).append(finding.severity)
    for w in sim.workloads:
        severities = by_workload.get((w.namespace, w.kind, w.name), [])
        if w.hardened:
            assert all(s < Severity.MEDIUM for s in severities), w.key
        else:
            assert any(s >= Severity.HIGH for s in severities), w.key
    kinds = {w.kind for w in sim.workloads}
    assert kinds == {"Deployment", "StatefulSet", "DaemonSet", "CronJob"}
    assert len({w.namespace for w in sim.workloads}) >= 5
    assert {w.hardened for w in sim.workloads} == {True, False}
    privileged = by_workload[("shop", "Deployment", "storefront")]
    assert Severity.CRITICAL in privileged
