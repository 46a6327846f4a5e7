"""Folding: one finding per problem, naming the implied rules it holds (static/folding.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from kubesentinel.models import Finding, Rule, Severity
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, ScanResult, scan_paths
from kubesentinel.static.folding import fold, meets, unfold, where_of
from kubesentinel.static.formats import ScanReport, renderer
from kubesentinel.static.formats.json_format import document
from tests.conftest import shared_path

AGENT = Path(__file__).parent / "data" / "folding" / "agent.yaml"
CONTAINER = "spec.template.spec.containers[0]"


def _scan(path: Path, *, combine: bool) -> ScanResult:
    return scan_paths([str(path)], builtin_catalogue(), ScanOptions(fold=combine))


def _heads(findings: list[Finding]) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(f.rule_id, f.field_path.removeprefix(CONTAINER)): f.folded_ids for f in findings}


def _keys(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(f.rule_id, f.field_path, f.message) for f in findings}


def test_each_problem_is_one_finding_naming_the_rules_it_folds() -> None:
    heads = _heads(_scan(AGENT, combine=True).findings)
    assert heads[("KS-0036", ".volumeMounts[0]")] == ("KS-0005", "KS-0015", "KS-0035")
    # Writable is a problem of its own: a read-only mount of the socket does not fail KS-0034.
    assert heads[("KS-0034", ".volumeMounts[0].readOnly")] == ()
    sys_admin = ("KS-0007", "KS-0016", "KS-0020", "KS-0022", "KS-0027", "KS-0032")
    assert heads[("KS-0031", ".securityContext.capabilities.add[0]")] == sys_admin
    # NET_ADMIN (add[1]) is another capability: its own finding, not folded into SYS_ADMIN's.
    assert heads[("KS-0032", ".securityContext.capabilities.add[1]")] == ("KS-0007", "KS-0020")
    # KS-0020 on drop goes to the rules about drop, not to a capability added beside it.
    assert heads[("KS-0029", ".securityContext.capabilities.drop")] == ("KS-0020", "KS-0028")
    assert not [key for key in heads if key[0] in ("KS-0005", "KS-0015", "KS-0035", "KS-0028")]


def test_folding_loses_no_finding_and_keeps_the_highest_severity() -> None:
    folded = _scan(AGENT, combine=True).findings
    unfolded = _scan(AGENT, combine=False).findings
    assert len(folded) < len(unfolded)
    assert _keys(unfold(folded)) == _keys(unfolded)
    assert all(not f.folded for f in unfolded)
    for finding in folded:
        assert (
            finding.severity == max([finding, *finding.folded], key=lambda f: f.severity).severity
        )


def test_the_folded_severity_is_the_highest_of_the_group() -> None:
    # The catalogue keeps impliers at least as severe; fold() itself takes the maximum.
    low = _rule("X-1", Severity.LOW, implies=("X-2",))
    high = _rule("X-2", Severity.HIGH)
    findings = [_finding("X-1", Severity.LOW, "spec.hostPID"), _finding("X-2", Severity.HIGH, "")]
    reported, suppressed = fold(findings, [], [], [low, high])
    assert [(f.rule_id, f.severity, f.folded_ids) for f in reported] == [
        ("X-1", Severity.HIGH, ("X-2",))
    ]
    assert suppressed == []


def _rule(rule_id: str, severity: Severity, implies: tuple[str, ...] = ()) -> Rule:
    return Rule(rule_id, "t", severity, "c", "d", "Fix.", ("Pod",), "pod_flag_true",
                implies=implies)  # fmt: skip


def _finding(rule_id: str, severity: Severity, field_path: str) -> Finding:
    agent = _scan(AGENT, combine=False).findings[0]
    return agent._replace(rule_id=rule_id, severity=severity, field_path=field_path)


POD = ("spec", "template", "spec")


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (
            f"{CONTAINER}.securityContext.privileged",
            (("container", (*POD, "containers", 0)), None),
        ),
        (
            f"{CONTAINER}.securityContext.capabilities.add[1]",
            (
                ("container", (*POD, "containers", 0)),
                (*POD, "containers", 0, "securityContext", "capabilities", "add", 1),
            ),
        ),
        # A mount and the volume it names are one spot.
        (f"{CONTAINER}.volumeMounts[0].readOnly", (("volume", "sock"), None)),
        ("spec.template.spec.volumes[0].hostPath", (("volume", "sock"), None)),
        ("spec.template.spec.hostPID", (("pod", ()), None)),
        ("rules[2].verbs[0]", (("pod", ()), ("rules", 2))),
    ],
)
def test_where_a_finding_is(path: str, where: object) -> None:
    body = _scan(AGENT, combine=False).scanned[0].body
    assert where_of(body, path) == where


def test_findings_meet_in_the_same_container_entry_or_under_the_pod() -> None:
    body = _scan(AGENT, combine=False).scanned[0].body
    add0 = where_of(body, f"{CONTAINER}.securityContext.capabilities.add[0]")
    add1 = where_of(body, f"{CONTAINER}.securityContext.capabilities.add[1]")
    escalation = where_of(body, f"{CONTAINER}.securityContext.allowPrivilegeEscalation")
    pod = where_of(body, "spec.template.spec.securityContext.seccompProfile.type")
    other = where_of(body, "spec.template.spec.initContainers[0].securityContext.privileged")
    assert meets(add0, escalation)
    assert meets(pod, escalation)
    assert not meets(add0, add1)
    assert not meets(escalation, other)
    assert not meets(where_of(body, f"{CONTAINER}.volumeMounts[0]"), escalation)


def _annotated(tmp_path: Path, skip: str) -> Path:
    note = f'      annotations:\n        kubesentinel.io/skip: "{skip}"\n'
    labels = "      labels: {app: agent}\n"
    text = AGENT.read_text().replace(labels, labels + note)
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_suppressing_the_implier_covers_what_it_folds(tmp_path: Path) -> None:
    path = _annotated(tmp_path, "KS-0036=the log agent reads the docker socket")
    folded = _scan(path, combine=True)
    (socket,) = [s for s in folded.suppressed if s.finding.rule_id == "KS-0036"]
    assert socket.finding.folded_ids == ("KS-0005", "KS-0015", "KS-0035")
    assert socket.suppression.reason == "the log agent reads the docker socket"
    assert len(folded.suppressed) == 1
    reported = {f.rule_id for f in folded.findings}
    assert not reported & {"KS-0005", "KS-0015", "KS-0035", "KS-0036"}
    # One finding per rule: the same four findings suppressed, each by that one annotation.
    single = _scan(path, combine=False)
    assert sorted(s.finding.rule_id for s in single.suppressed) == [
        "KS-0005", "KS-0015", "KS-0035", "KS-0036"
    ]  # fmt: skip
    assert {s.suppression for s in single.suppressed} == {socket.suppression}


def test_suppressing_only_an_implied_rule_leaves_its_implier_reported(tmp_path: Path) -> None:
    path = _annotated(tmp_path, "KS-0005=hostPath volumes reviewed")
    result = _scan(path, combine=True)
    heads = _heads(result.findings)
    assert heads[("KS-0036", ".volumeMounts[0]")] == ("KS-0035",)
    (reviewed,) = result.suppressed
    # The suppressed hostPath finding still holds what it implies on the same volume.
    assert (reviewed.finding.rule_id, reviewed.finding.folded_ids) == ("KS-0005", ("KS-0015",))


def test_every_format_names_the_folded_rules() -> None:
    result = _scan(AGENT, combine=True)
    report = ScanReport(result, builtin_catalogue(), Severity.LOW, "0.1.0")
    schema = json.loads(
        files("kubesentinel.static.formats").joinpath("scan-result.schema.json").read_text()
    )
    document = json.loads(renderer("json")(report))
    jsonschema.Draft202012Validator(schema).validate(document)
    (socket,) = [f for f in document["findings"] if f["rule_id"] == "KS-0036"]
    assert socket["folded"] == ["KS-0005", "KS-0015", "KS-0035"]
    assert socket["severity"] == "critical"
    # The references of every folded rule: KS-0005's C-0048, KS-0035's sensitive-host-mounts.
    assert {"CKV_K8S_27", "C-0048", "sensitive-host-mounts", "KSV028"} <= set(
        socket["references"]["peers"]
    )
    assert socket["references"]["pss"] == ["baseline:hostpath-volumes", "restricted:volume-types"]
    table = renderer("table")(report)
    assert (
        "also: KS-0005 (HostPath volume), KS-0015 (Restricted volume type), "
        "KS-0035 (Sensitive host path mounted)" in table
    )
    markdown = renderer("markdown")(report)
    assert "| critical | KS-0036 (also KS-0005, KS-0015, KS-0035) |" in markdown
    junit = ET.fromstring(renderer("junit")(report))  # noqa: S314 - our own output
    messages = [f.get("message", "") for f in junit.iter("failure")]
    assert [m for m in messages if m.endswith("(also KS-0005, KS-0015, KS-0035)")]


def test_sarif_names_the_folded_rules_and_stays_valid() -> None:
    schema = json.loads(shared_path("schemas", "sarif-schema-2.1.0.json").read_text())
    report = ScanReport(_scan(AGENT, combine=True), builtin_catalogue(), Severity.LOW, "0.1.0")
    log = json.loads(renderer("sarif")(report))
    jsonschema.Draft4Validator(schema).validate(log)
    (socket,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "KS-0036"]
    assert socket["properties"]["folded"] == ["KS-0005", "KS-0015", "KS-0035"]
    assert socket["message"]["text"].endswith("(also KS-0005, KS-0015, KS-0035)")
    related = [(r["id"], r["message"]["text"].split(":")[0]) for r in socket["relatedLocations"]]
    assert related == [(1, "KS-0005"), (2, "KS-0015"), (3, "KS-0035")]


def test_the_json_fast_path_writes_folded_findings_as_the_document_does() -> None:
    report = ScanReport(_scan(AGENT, combine=True), builtin_catalogue(), Severity.LOW, "0.1.0")
    assert json.loads(renderer("json")(report)) == json.loads(json.dumps(document(report)))
