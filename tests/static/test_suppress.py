"""Suppression annotations and config skips over a real scan of tests/static/data/suppress/.

The scan runs from tests/static/data so file names are relative, as in CI.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kubesentinel.config import load_config
from kubesentinel.errors import ConfigError
from kubesentinel.models import Finding, Severity
from kubesentinel.static.catalogue import Catalogue, builtin_catalogue
from kubesentinel.static.engine import ScanOptions, ScanResult, scan_paths
from kubesentinel.static.formats import ScanReport, renderer
from kubesentinel.static.skips import SkipRule
from kubesentinel.static.suppress import Suppressor, build
from tests.conftest import shared_path

DATA = Path(__file__).parent / "data"
ANNOTATED = "suppress/annotated.yaml"


def _scan(
    monkeypatch: pytest.MonkeyPatch,
    suppressor: Suppressor | None = None,
    catalogue: Catalogue | None = None,
    *paths: str,
) -> ScanResult:
    monkeypatch.chdir(DATA)
    options = ScanOptions(suppressor=suppressor)
    return scan_paths(list(paths or [ANNOTATED]), catalogue or builtin_catalogue(), options)


def _ids(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(f.rule_id, f.obj.name, f.field_path) for f in findings}


@pytest.fixture
def annotated(monkeypatch: pytest.MonkeyPatch) -> ScanResult:
    return _scan(monkeypatch)


# --- annotations ---------------------------------------------------------------------------


def test_annotations_on_object_template_and_container(annotated: ScanResult) -> None:
    got = {
        (s.finding.rule_id, s.finding.obj.name, s.finding.field_path): s.suppression
        for s in annotated.suppressed
    }
    assert set(got) == {
        ("KS-0002", "agent", "spec.template.spec.hostPID"),  # object annotation, spaces
        ("KS-0003", "agent", "spec.template.spec.hostIPC"),  # template, lower-case id
        ("KS-0001", "agent", "spec.template.spec.containers[1].securityContext.privileged"),
        ("KS-0004", "nightly", "spec.jobTemplate.spec.template.spec.hostNetwork"),  # CronJob
        # Implied by KS-0001 on the same container: its suppression covers them.
        ("KS-0022", "agent", "spec.template.spec.containers[1].securityContext.privileged"),
        (
            "KS-0016",
            "agent",
            "spec.template.spec.containers[1].securityContext.allowPrivilegeEscalation",
        ),
    }
    covering = got[
        "KS-0001", "agent", "spec.template.spec.containers[1].securityContext.privileged"
    ]
    assert got[
        "KS-0022", "agent", "spec.template.spec.containers[1].securityContext.privileged"
    ] == (covering)
    host_pid = got["KS-0002", "agent", "spec.template.spec.hostPID"]
    assert (host_pid.kind, host_pid.reason) == ("annotation", "node agent reads host processes")
    assert (host_pid.file, host_pid.line) == (ANNOTATED, 8)
    host_ipc = got["KS-0003", "agent", "spec.template.spec.hostIPC"]
    assert (host_ipc.reason, host_ipc.line) == (None, 16)  # no reason given: recorded as none
    assert got["KS-0004", "nightly", "spec.jobTemplate.spec.template.spec.hostNetwork"].line == 48


def test_container_annotation_suppresses_only_that_container(annotated: ScanResult) -> None:
    reported = _ids(annotated.findings)
    # "app" is privileged too and stays reported, with the rules KS-0001 implies on it.
    for rule_id in ("KS-0001", "KS-0022"):
        path = "spec.template.spec.containers[0].securityContext.privileged"
        assert (rule_id, "agent", path) in reported
    # Pod-level findings of the same rule are never inside a container; on "debug" the
    # suppression of KS-0001 covers KS-0022 and KS-0016, which it implies there.
    debug = [s for s in annotated.suppressed if "containers[1]" in s.finding.field_path]
    assert sorted(s.finding.rule_id for s in debug) == ["KS-0001", "KS-0016", "KS-0022"]
    assert not [f for f in annotated.findings if "containers[1]" in f.field_path and f.rule_id in
                ("KS-0016", "KS-0022")]  # fmt: skip


def test_bad_annotations_warn_at_their_line_and_suppress_nothing(annotated: ScanResult) -> None:
    warnings = [(w.code, w.file, w.line, w.message) for w in annotated.warnings]
    assert warnings == [
        ("KS-W010", ANNOTATED, 37, "ignored annotation kubesentinel.io/skip: no rule id"),
        (
            "KS-W010",
            ANNOTATED,
            38,
            "ignored annotation kubesentinel.io/skip3: unknown rule id 'KS-9999'; "
            "nothing is suppressed",
        ),
        (
            "KS-W010",
            ANNOTATED,
            39,
            "ignored annotation kubesentinel.io/skipall: not a suppression annotation key",
        ),
        (
            "KS-W010",
            ANNOTATED,
            40,
            "ignored annotation kubesentinel.io/skip.sidecar: CronJob/ops/nightly has no container "
            'named "sidecar"',
        ),
    ]
    nightly = {f.rule_id for f in annotated.findings if f.obj.name == "nightly"}
    assert {"KS-0001", "KS-0022"} <= nightly  # the unknown id did not widen into "everything"
    assert all(
        s.finding.rule_id == "KS-0004"
        for s in annotated.suppressed
        if s.finding.obj.name == "nightly"
    )


def test_non_string_annotation_value_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        "    kubesentinel.io/skip: 2\nspec:\n  hostPID: true\n  containers: []\n"
    )
    monkeypatch.chdir(tmp_path)
    result = scan_paths(["pod.yaml"], builtin_catalogue(), ScanOptions())
    assert [(w.line, w.message) for w in result.warnings] == [
        (6, "ignored annotation kubesentinel.io/skip: the value must be a string, got int")
    ]
    assert "KS-0002" in {f.rule_id for f in result.findings}
    assert not result.suppressed


def test_annotations_accept_rule_aliases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tuple(
        replace(r, aliases=("OLD-HOSTPID",)) if r.id == "KS-0002" else r
        for r in builtin_catalogue().rules
    )
    suppressor = build(rules)
    assert suppressor.canonical["OLD-HOSTPID"] == "KS-0002"
    (tmp_path / "alias.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        '    kubesentinel.io/skip: " old-hostpid =old id still works"\n'
        "spec:\n  hostPID: true\n  containers: []\n"
    )
    monkeypatch.chdir(tmp_path)
    result = scan_paths(["alias.yaml"], Catalogue(rules), ScanOptions(suppressor=suppressor))
    assert [(s.finding.rule_id, s.suppression.reason) for s in result.suppressed] == [
        ("KS-0002", "old id still works")
    ]
    assert not result.warnings


def test_annotation_ids_are_checked_against_every_rule_not_the_selection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # --framework may leave KS-0002 out; its annotation must not then warn as unknown.
    only_privileged = Catalogue(tuple(r for r in builtin_catalogue().rules if r.id == "KS-0001"))
    result = _scan(monkeypatch, build(builtin_catalogue().rules), only_privileged)
    assert not [w for w in result.warnings if "unknown rule id 'KS-0002'" in w.message]
    assert {s.finding.rule_id for s in result.suppressed} == {"KS-0001"}


# --- config skips --------------------------------------------------------------------------


def _config_skips(tmp_path: Path, text: str) -> tuple[SkipRule, ...]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(str(path)).static.skip


def test_config_skips_by_rule_namespace_kind_name_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skips = _config_skips(
        tmp_path,
        "static:\n"
        "  skip:\n"
        "    - rule: ks-0022\n"  # id matched case-insensitively, everywhere
        "      reason: tracked in SEC-12\n"
        "    - namespace: 'legacy-*'\n"
        "      reason: legacy namespace, frozen\n"
        "    - kind: CronJob\n"
        "      name: 'night*'\n"
        "      rule: KS-0001\n"
        "    - path: 'suppress/vendor/*'\n"
        "      reason: vendored chart\n",
    )
    assert [s.line for s in skips] == [3, 5, 7, 10]
    result = _scan(monkeypatch, build(builtin_catalogue().rules, skips), None, "suppress")
    by_reason: dict[str | None, set[tuple[str, str]]] = {}
    for item in result.suppressed:
        if item.suppression.kind == "config":
            key = (item.finding.rule_id, item.finding.obj.name)
            by_reason.setdefault(item.suppression.reason, set()).add(key)
            assert item.suppression.file == str(tmp_path / "config.yaml")
    # KS-0022 implies KS-0016 on the same container: the skip covers both.
    assert {rule for rule, _ in by_reason["tracked in SEC-12"]} == {"KS-0022", "KS-0016"}
    assert {name for _, name in by_reason["legacy namespace, frozen"]} == {"old"}
    # The CronJob's KS-0016 is implied by both skipped rules; the most severe one covers it.
    assert by_reason[None] == {("KS-0001", "nightly"), ("KS-0016", "nightly")}
    assert {name for _, name in by_reason["vendored chart"]} == {"vendored"}
    reported = {(f.rule_id, f.obj.name) for f in result.findings}
    assert not {r for r in reported if r[0] == "KS-0022"}
    assert not {r for r in reported if r[1] in ("old", "vendored")}
    assert ("KS-0001", "agent") in reported  # the CronJob skip does not reach the Deployment


def test_namespace_skip_never_matches_objects_without_a_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skips = _config_skips(tmp_path, "static:\n  skip:\n    - namespace: '*'\n")
    result = _scan(monkeypatch, build(builtin_catalogue().rules, skips), None, "suppress")
    assert {f.obj.namespace for f in result.findings} == {None}
    assert result.findings  # suppress/cluster.yaml has no namespace: still reported


def test_annotation_wins_over_config_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    skips = _config_skips(tmp_path, "static:\n  skip:\n    - rule: KS-0002\n")
    result = _scan(monkeypatch, build(builtin_catalogue().rules, skips))
    kinds = {s.suppression.kind for s in result.suppressed if s.finding.rule_id == "KS-0002"}
    assert kinds == {"annotation"}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("static:\n  skip: KS-0001\n", 2, "static.skip must be a list of mappings"),
        ("static:\n  skip:\n    - KS-0001\n", 3, "static.skip[0] must be a mapping"),
        ("static:\n  skip:\n    - reason: why\n", 3, "static.skip[0] matches everything"),
        (
            "static:\n  skip:\n    - rule: KS-0001\n      rules: x\n",
            4,
            "unknown key static.skip[0].rules",
        ),
        (
            "static:\n  skip:\n    - rule: [KS-0001]\n",
            3,
            "static.skip[0].rule must be a non-empty string",
        ),
        ("static:\n  skip:\n    - name: ''\n", 3, "must be a non-empty string"),
    ],
)
def test_bad_skip_entries_name_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert (info.value.file, info.value.line) == (str(path), line)
    assert fragment in info.value.message


def test_unknown_rule_in_a_config_skip_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    skips = _config_skips(tmp_path, "static:\n  skip:\n    - name: x\n    - rule: KS-9999\n")
    with pytest.raises(ConfigError) as info:
        build(builtin_catalogue().rules, skips)
    assert (info.value.file, info.value.line) == (str(tmp_path / "config.yaml"), 4)
    assert "unknown rule id 'KS-9999'" in info.value.message


# --- reports -------------------------------------------------------------------------------


def _report(result: ScanResult, threshold: Severity = Severity.HIGH) -> ScanReport:
    return ScanReport(result, builtin_catalogue(), threshold, "0.1.0")


@pytest.mark.parametrize("threshold", list(Severity))
def test_every_finding_is_reported_suppressed_or_below_threshold(
    threshold: Severity, annotated: ScanResult
) -> None:
    report = _report(annotated, threshold)
    total = len(annotated.findings) + len(annotated.suppressed)
    assert len(report.findings) + len(report.suppressed) + report.below_threshold == total
    assert all(s.finding.severity >= threshold for s in report.suppressed)


def test_json_lists_suppressed_findings_and_validates(annotated: ScanResult) -> None:
    schema = json.loads(
        files("kubesentinel.static.formats").joinpath("scan-result.schema.json").read_text()
    )
    document = json.loads(renderer("json")(_report(annotated)))
    jsonschema.Draft202012Validator(schema).validate(document)
    # Four annotations; KS-0001's covers KS-0022 (high) and KS-0016 (medium, below HIGH).
    assert document["summary"]["suppressed"] == len(document["suppressed"]) == 5
    first = document["suppressed"][0]
    assert first["rule_id"] == "KS-0002"
    assert first["suppression"] == {
        "kind": "annotation",
        "reason": "node agent reads host processes",
        "file": ANNOTATED,
        "line": 8,
    }
    # The schema stays strict: an extra key in a suppressed finding is rejected.
    first["extra"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(document)


def _sarif_results(result: ScanResult, threshold: Severity = Severity.HIGH) -> list[Any]:
    log = json.loads(renderer("sarif")(_report(result, threshold)))
    schema = json.loads(shared_path("schemas", "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    results: list[Any] = log["runs"][0]["results"]
    return results


def test_sarif_marks_suppressed_results_in_source_and_external(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skips = _config_skips(tmp_path, "static:\n  skip:\n    - rule: KS-0022\n      reason: SEC-12\n")
    result = _scan(monkeypatch, build(builtin_catalogue().rules, skips))
    results = _sarif_results(result)
    suppressed = [r for r in results if "suppressions" in r]
    assert len(suppressed) == len(_report(result).suppressed) == 7  # 4 annotations, 3 KS-0022
    assert len(results) - len(suppressed) == len(_report(result).findings)
    by_rule = {(r["ruleId"], r["suppressions"][0]["kind"]) for r in suppressed}
    assert ("KS-0002", "inSource") in by_rule
    assert ("KS-0022", "external") in by_rule
    host_pid = next(r for r in suppressed if r["ruleId"] == "KS-0002")["suppressions"][0]
    assert host_pid["justification"] == "node agent reads host processes"
    assert host_pid["status"] == "accepted"
    assert host_pid["location"]["physicalLocation"]["region"] == {"startLine": 8}
    hashes = [r["partialFingerprints"]["primaryLocationLineHash"] for r in results]
    assert len(set(hashes)) == len(hashes)


def test_table_markdown_and_junit_count_suppressed(annotated: ScanResult) -> None:
    report = _report(annotated)
    table = renderer("table")(report)
    assert "5 suppressed (5 by annotation): --format json lists them with reasons." in table
    markdown = renderer("markdown")(report)
    assert "> 5 suppressed (5 by annotation): listed below with their reasons." in markdown
    assert "| KS-0002 | `Deployment ops/agent` | `suppress/annotated.yaml:19` | annotation " in (
        markdown
    )
    assert "node agent reads host processes |" in markdown
    junit = renderer("junit")(report)
    root = ET.fromstring(junit)  # noqa: S314 - our own output, not untrusted XML
    skipped = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    suppressed = [c for c in skipped if c.get("name", "").endswith("(suppressed)")]
    assert len(suppressed) == len(annotated.suppressed) == 6
    messages = {skip.get("message") for case in suppressed for skip in case.iter("skipped")}
    assert "suppressed by annotation: node agent reads host processes" in messages
    assert "suppressed by annotation" in messages  # KS-0003, written without a reason
    assert int(root.get("skipped", "0")) >= 4


def test_several_rules_in_one_annotation_suppress_nothing_and_say_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        '    kubesentinel.io/skip: "KS-0002,KS-0001=both"\nspec:\n  hostPID: true\n'
        "  containers: []\n"
    )
    monkeypatch.chdir(tmp_path)
    result = scan_paths(["pod.yaml"], builtin_catalogue(), ScanOptions())
    assert not result.suppressed
    assert "one rule per annotation: add skip2, skip3" in result.warnings[0].message


def test_parallel_scan_suppresses_as_the_serial_scan(tmp_path: Path) -> None:
    from kubesentinel.static.parallel import PARALLEL_MIN_BYTES

    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i}\n  annotations:\n"
        '    padding: "{pad}"\n    kubesentinel.io/skip{n}: "KS-0002=host tools"\n'
        "spec:\n  hostPID: true\n  containers:\n    - name: c\n      image: nginx:1.25\n"
    )
    for n in range(30):
        docs = [pod.format(i=i, n=i % 3 or "", pad="x" * 4000) for i in range(20)]
        (tmp_path / f"f{n:02}.yaml").write_text("---\n".join(docs))
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) > PARALLEL_MIN_BYTES
    catalogue = builtin_catalogue()
    serial = scan_paths([str(tmp_path)], catalogue, ScanOptions(workers=1))
    parallel = scan_paths([str(tmp_path)], catalogue, ScanOptions(workers=2))
    assert serial.suppressed == parallel.suppressed
    assert len(serial.suppressed) == 30 * 20
    # Annotation lines survive the trip back from the workers: 6 lines below the object's.
    assert {s.suppression.line - s.finding.object_line for s in parallel.suppressed} == {6}
    assert not [f for f in parallel.findings if f.rule_id == "KS-0002"]
