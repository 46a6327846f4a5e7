"""The incident and period reports' content, on the simulator's stream replayed by the monitor."""

from __future__ import annotations

import itertools
import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.errors import ReportError
from kubesentinel.models.report import Attack, ProcessNode
from kubesentinel.reporting.build import build_incident_report
from kubesentinel.reporting.formats import render
from kubesentinel.reporting.period import build_period_report
from kubesentinel.runtime.store.open import open_store
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.vault.ledger import event_leaf
from tests.reporting.conftest import Store, incident_of

HOUR_NS = 3600 * 1_000_000_000
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, where the simulation starts


def _walk(
    nodes: tuple[ProcessNode, ...], path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], ProcessNode]:
    found: dict[tuple[str, ...], ProcessNode] = {}
    for node in nodes:
        here = (*path, node.name)
        found[here] = node
        found.update(_walk(node.children, here))
    return found


def test_the_container_escape_report_holds_what_the_store_holds(sim: Store) -> None:
    incident_id = incident_of(sim.path, "node-agent", "critical")
    store = open_store(str(sim.path), read_only=True)
    try:
        report = build_incident_report(store, incident_id)
        incident = store.get_incident(incident_id)
        events = store.stored_events_of(incident_id)
    finally:
        store.close()
    assert incident is not None
    s = report.summary
    assert (s.namespace, s.kind, s.name, s.severity) == (
        "monitoring", "DaemonSet", "node-agent", "critical"
    )  # fmt: skip
    assert report.integrity_problem is None
    assert set(s.pods) == {e.event.pod for e in events}
    assert set(s.nodes) == {e.event.hostname for e in events}
    assert s.images == ("registry.example.com/ops/node-agent:1.8.3",)
    assert [(r.points, r.reason) for r in s.reasons] == [
        (r.points, r.reason) for r in incident.reasons
    ]
    assert (s.signals, s.context_events) == (incident.event_count, incident.context.total)
    assert s.confidence == "high"
    assert s.first_step.startswith("Cordon ")  # it reached privilege_escalation
    # The count is of every rule's alerts; the most serious rule is named apart from it.
    assert (
        f"{incident.event_count} alert(s) of {len(incident.rules)} rules, the most serious "
        "'Detect release_agent File Container Escapes' (Critical), in 3 pods on 3 nodes"
    ) in s.headline

    # Timeline: each event counted once, oldest first, no two neighbours alike.
    rows = report.timeline.rows
    assert sum(row.count for row in rows) == len(events) == report.timeline.events
    assert [row.first_ns for row in rows] == sorted(row.first_ns for row in rows)
    for before, after in itertools.pairwise(rows):
        assert (before.rule, before.process, before.cmdline) != (
            after.rule, after.process, after.cmdline
        )  # fmt: skip
    assert rows[-1].count == 21  # the metadata-service calls after the escape, collapsed
    last_pods = {e.event.pod for e in events if e.event.time_ns >= rows[-1].first_ns}
    assert rows[-1].pods == len(last_pods) > 1  # from several pods: the row says so

    # Process tree: the escape ran under the reverse shell.
    tree = _walk(report.process_tree.roots)
    escape = tree[("bash", "sh")]
    assert escape.cmdlines == ("sh -c echo /mnt/host/tmp/x.sh > /tmp/cgrp/release_agent",)
    assert escape.rules == ("Detect release_agent File Container Escapes",)
    assert tree[("bash", "mount")].events == 2
    assert tree[("containerd-shim", "node-agent", "bash")].cmdlines == ("bash -i",)

    peers = {(p.remote, p.process) for p in report.network}
    assert ("10.0.2.37:58744->198.51.100.7:4444", "bash") in peers
    assert [(f.path, f.process) for f in report.files] == [("/tmp/cgrp/release_agent", "sh")]

    techniques = {t.id: t for t in report.techniques}
    assert set(techniques) == set(incident.techniques)
    assert techniques["T1611"] == Attack(
        "T1611", "Escape to Host", "https://attack.mitre.org/techniques/T1611/"
    )
    assert [t.id for t in report.tactics] == ["TA0007", "TA0002", "TA0004"]
    assert report.tactics[2].url == "https://attack.mitre.org/tactics/TA0004/"

    # Posture: every rule the incident recorded, with the catalogue's fix.
    catalogue = builtin_catalogue()
    items = {item.rule_id: item for item in report.posture.items}
    assert set(incident.posture) <= set(items)
    privileged = items["KS-0001"]
    rule = catalogue.get("KS-0001")
    assert rule is not None
    assert (privileged.impact, privileged.remediation) == ("privileged", rule.remediation)
    assert privileged.why.startswith("The incident reached privilege_escalation: ")
    assert "not of this incident's risk" in items["KS-0040"].why  # no runtime impact
    assert report.posture.source == str(sim.posture)
    assert report.posture.saved_ns is not None
    assert report.posture.saved_ns <= report.generated_ns

    assert report.anomalies == ()
    assert report.anomaly_count == 0

    related = report.related
    assert related
    assert incident_id not in {r.id for r in related}
    assert {r.workload for r in related if r.relation == "same workload"} == {
        "monitoring/DaemonSet/node-agent"
    }
    assert [r.first_ns for r in related] == sorted((r.first_ns for r in related), reverse=True)


def test_the_evidence_manifest_names_what_vault_export_proves(
    sim: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    incident_id = incident_of(sim.path, "node-agent", "critical")
    store = open_store(str(sim.path), read_only=True)
    try:
        evidence = build_incident_report(store, incident_id).evidence
        events = store.stored_events_of(incident_id)
    finally:
        store.close()
    assert evidence.verified
    assert evidence.problems == ()
    assert evidence.record_count == len(events) == len(evidence.records)
    roles = [r.role for r in evidence.records]
    assert roles == sorted(roles, key=lambda role: role != "signal")  # signals first
    assert {r.event_id for r in evidence.records} == {s.event.id for s in events}
    for segment in evidence.segments:
        assert segment.checkpoint is not None
        assert segment.checkpoint_size is not None
        assert segment.checkpoint_size >= segment.id
    assert evidence.checkpoint_note is not None
    assert evidence.checkpoint_note.startswith("kubesentinel.vault/")

    # The commands are the real ones: run as printed (from another directory), they pass,
    # and the bundle they write holds records whose hashes are the manifest's.
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(shlex.split(evidence.verify_command)[1:]) == 0
    assert main(shlex.split(evidence.export_command)[1:]) == 0
    bundle = tmp_path / f"incident-{incident_id}.bundle"
    lines = [json.loads(line) for line in bundle.read_text().splitlines()]
    leaves = {event_leaf(line["record"]).hex() for line in lines if line.get("type") == "event"}
    assert {r.record_hash for r in evidence.records} <= leaves
    assert main(["vault", "verify", "--bundle", str(bundle)]) == 0


def test_period_report_counts_every_incident_of_the_period(sim: Store) -> None:
    store = open_store(str(sim.path), read_only=True)
    try:
        everything = store.list_incidents()
        report = build_period_report(store, START_NS, START_NS + HOUR_NS)
        shop = build_period_report(store, START_NS, START_NS + HOUR_NS // 4, namespace="shop")
    finally:
        store.close()
    assert report.incidents == len(everything) == len(report.rows)
    assert sum(c.count for c in report.by_severity) == report.incidents
    assert [c.key for c in report.by_severity] == ["critical", "high", "medium", "low"]
    assert report.top[0].risk_score == max(i.risk_score for i in everything)
    assert [r.first_ns for r in report.rows] == sorted(r.first_ns for r in report.rows)
    expected_rules: dict[str, int] = {}
    for incident in everything:
        for rule in incident.rules:
            expected_rules[rule.rule] = expected_rules.get(rule.rule, 0) + rule.count
    top_rule = max(expected_rules.items(), key=lambda kv: (kv[1], kv[0]))
    assert (report.by_rule[0].key, report.by_rule[0].count) == top_rule
    assert report.integrity_problem is None

    assert {r.workload.split("/")[0] for r in shop.rows} == {"shop"}
    assert all(r.first_ns <= START_NS + HOUR_NS // 4 for r in shop.rows)
    assert shop.incidents < report.incidents


def test_unknown_incident_and_empty_period_are_report_errors(sim: Store) -> None:
    store = open_store(str(sim.path), read_only=True)
    try:
        with pytest.raises(ReportError, match="no incident 'nope'"):
            build_incident_report(store, "nope")
        with pytest.raises(ReportError, match=r"no incident in .* in namespace 'shop'"):
            build_period_report(store, 0, 1_000, namespace="shop")
    finally:
        store.close()


def test_capped_lists_say_how_much_they_left_out(sim: Store) -> None:
    """The counting is test_activity's; here every format says what a cap left out."""
    store = open_store(str(sim.path), read_only=True)
    try:
        report = build_incident_report(store, incident_of(sim.path, "fluent-bit"))
    finally:
        store.close()
    assert (report.network_left_out, report.files_left_out) == (0, 0)
    assert "more connection(s) not shown" not in render(report, "markdown")
    cut = replace(report, network=report.network[:2], network_left_out=7, files_left_out=0)
    said = "7 more connection(s) not shown (at most 2)."
    assert f"**Cut:** {said}" in render(cut, "markdown")
    assert f"<strong>Cut:</strong> {said}" in render(cut, "html")
    assert json.loads(render(cut, "json"))["network_left_out"] == 7
