"""Agreement with the peer-labelled fixtures of shared/conformance, and tests of the harness.

The harness lives in bench/conformance.py (also a script); `pytest -m conformance -s` prints
its report and writes it to .reports/conformance.txt (+ .json). Point KUBESENTINEL_CONFORMANCE
at another folder of the same format (such as the hidden half) to score that one instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kubesentinel.static.catalogue import builtin_catalogue, load_catalogue
from tests.conftest import ROOT, shared_path

MIN_AGREEMENT = 0.95
REPORTS = ROOT / ".reports"


def _load_harness() -> ModuleType:
    name = "kubesentinel_bench_conformance"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "conformance.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


def _conformance_dir() -> Path:
    override = os.environ.get("KUBESENTINEL_CONFORMANCE")
    return Path(override) if override else shared_path("conformance")


@pytest.mark.conformance
def test_agreement_per_source_is_at_least_95_percent() -> None:
    directory = _conformance_dir()
    report = harness.evaluate(
        directory, builtin_catalogue(), harness.load_exceptions(harness.EXCEPTIONS_FILE)
    )
    text = harness.render(report)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "conformance.txt").write_text(text, encoding="utf-8")
    (REPORTS / "conformance.json").write_text(json.dumps(harness.as_json(report), indent=2))
    print("\n" + text)
    low = {
        source: f"{100 * tally.with_rule:.1f}% of {tally.scored}"
        for source, tally in report.tally("source").items()
        if tally.with_rule is not None and tally.with_rule < MIN_AGREEMENT
    }
    assert not low, f"agreement below {MIN_AGREEMENT:.0%} (see .reports/conformance.txt): {low}"


@pytest.mark.conformance
def test_every_exception_names_a_label() -> None:
    directory = _conformance_dir()
    labels = {label.exception_key for label in harness.load_labels(directory / "labels.jsonl")}
    entries = harness.load_exceptions(harness.EXCEPTIONS_FILE)
    assert [e for e in entries if e.key not in labels] == []


def test_exceptions_file_is_well_formed() -> None:
    for entry in harness.load_exceptions(harness.EXCEPTIONS_FILE):
        assert "https://" in entry.reason


# ---------------------------------------------------------------------------- the harness itself

RULES = {
    "KS-9001.yaml": """
id: KS-9001
title: Privileged container (test)
severity: low
category: test
kinds: [workloads]
predicate: container_flag_true
params: {field: privileged}
description: Test rule.
remediation: Do not.
references: {concepts: [privileged_container], peers: [P-PRIV]}
""",
    "KS-9002.yaml": """
id: KS-9002
title: Host PID (test)
severity: critical
category: test
kinds: [workloads]
predicate: pod_flag_true
params: {field: hostPID}
description: Test rule.
remediation: Do not.
references: {concepts: [host_pid], peers: [P-PID]}
""",
}

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: priv}
spec:
  template:
    spec:
      initContainers:
        - {name: init, image: busybox, securityContext: {privileged: yes}}
      containers: [{name: app, image: nginx}]
---
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: team}
spec:
  containers: [{name: app, image: nginx}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: item-priv}
    spec:
      containers: [{name: app, image: nginx, securityContext: {privileged: true}}]
  - apiVersion: v1
    kind: Pod
    metadata: {name: item-pid}
    spec:
      hostPID: true
      containers: [{name: app, image: nginx}]
"""

RBAC = {
    "role.yaml": """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: exec}
rules: [{apiGroups: [""], resources: [pods/exec], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: exec, namespace: a}
rules: [{apiGroups: [""], resources: [pods/exec], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: exec, namespace: b}
rules: []
""",
    "binding.yaml": """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: to-cluster-role}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: exec}
subjects: [{kind: User, name: u}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: to-role, namespace: a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: exec}
subjects: [{kind: User, name: u}]
""",
}


def _record(doc: int | None, concept: str, expected: str, **extra: object) -> dict[str, object]:
    record: dict[str, object] = {
        "source": "alpha",
        "fixture": "src/all.yaml",
        "scan_unit": "src/all.yaml",
        "doc_index": doc,
        "item_index": None,
        "kind": "Pod",
        "namespace": None,
        "name": "x",
        "concept": concept,
        "expected": expected,
        "granularity": "resource",
        "peer_check_id": "P-PRIV",
    }
    record.update(extra)
    return record


LABELS = [
    # the init container is privileged (YAML 1.1 "yes"); empty documents are not counted
    _record(0, "privileged_container", "fail", kind="Deployment", name="priv"),
    _record(1, "privileged_container", "pass", namespace="team", name="plain"),
    _record(2, "privileged_container", "fail", item_index=0, name="item-priv", source="beta"),
    _record(2, "privileged_container", "pass", item_index=1, name="item-pid", source="beta"),
    _record(1, "privileged_container", "fail", namespace="team", name="plain"),  # FN
    _record(2, "host_pid", "pass", item_index=1, name="item-pid", peer_check_id="P-PID"),  # FP
    _record(2, "host_pid", "fail", item_index=0, name="wrong-name", peer_check_id="P-PID"),  # FN
    _record(0, "host_ipc", "fail", kind="Deployment", name="priv"),  # no rule
    _record(None, "privileged_container", "fail", granularity="file", source="beta"),
    _record(None, "host_pid", "pass", granularity="file", source="beta", peer_check_id="X"),
    _record(1, "host_pid", "pass", namespace="team", name="plain", peer_check_id="P-PID"),
]


@pytest.fixture
def conformance(tmp_path: Path) -> Path:
    (tmp_path / "fixtures" / "src").mkdir(parents=True)
    (tmp_path / "fixtures" / "src" / "all.yaml").write_text(MANIFEST)
    (tmp_path / "fixtures" / "rbac").mkdir()
    for name, text in RBAC.items():
        (tmp_path / "fixtures" / "rbac" / name).write_text(text)
    lines = [json.dumps(record) for record in LABELS]
    (tmp_path / "labels.jsonl").write_text("\n".join(lines) + "\n\n")
    (tmp_path / "concepts.md").write_text(
        "| concept | definition |\n|---|---|\n"
        "| `privileged_container` | x |\n| `host_pid` | x |\n| `host_ipc` | x |\n"
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in RULES.items():
        (rules / name).write_text(text)
    return tmp_path


def test_matcher_scores_each_label_against_the_findings(conformance: Path) -> None:
    exceptions = conformance / "exceptions.yaml"
    exceptions.write_text(
        "exceptions:\n"
        "  - {source: alpha, fixture: src/all.yaml, concept: host_pid, doc_index: 1,"
        " item_index: null, reason: 'see https://kubernetes.io/docs/'}\n"
    )
    catalogue = load_catalogue([conformance / "rules"])
    report = harness.evaluate(conformance, catalogue, harness.load_exceptions(exceptions))

    verdicts = [(o.label.line, o.verdict, o.exception is not None) for o in report.outcomes]
    assert verdicts == [
        (1, "TP", False),
        (2, "TN", False),
        (3, "TP", False),
        (4, "TN", False),
        (5, "FN", False),
        (6, "FP", False),
        (7, "FN", False),
        (8, "no rule", False),
        (9, "TP", False),
        (10, "FP", False),
        (11, "TN", True),
    ]
    fp = report.outcomes[5]
    assert fp.got == "fail"
    assert fp.rules == ("KS-9002",)
    assert fp.evidence == ("KS-9002 all.yaml:30 pod spec sets hostPID: true",)

    alpha, beta = report.tally("source")["alpha"], report.tally("source")["beta"]
    assert alpha.excepted == 1
    assert alpha.counts == {"TP": 1, "TN": 1, "FP": 1, "FN": 2, "error": 0, "no rule": 1}
    assert alpha.with_rule == 2 / 5
    assert alpha.overall == 2 / 6
    assert beta.counts == {"TP": 2, "TN": 1, "FP": 1, "FN": 0, "error": 0, "no rule": 0}
    assert report.tally("concept")["host_ipc"].with_rule is None

    # The mislabelled object and the peer id no rule lists are reported, not silently scored.
    assert any("labels.jsonl:7: src/all.yaml#2.0 holds Pod/item-priv" in w for w in report.warnings)
    assert any("peer check X (host_pid)" in w for w in report.warnings)

    text = harness.render(report)
    assert "Disagreements (4 with a rule, 1 without)" in text
    assert "FN      privileged_container  alpha  Pod/team/plain  src/all.yaml#1" in text
    assert "reason: see https://kubernetes.io/docs/" in text
    assert "host_ipc (1 labels here)" in text
    assert json.loads(json.dumps(harness.as_json(report)))["by_source"]["beta"]["TP"] == 2


def test_rbac_labels_accept_the_role_or_binding_their_roleref_links(conformance: Path) -> None:
    unit = harness.UnitScan(objects=harness.read_objects(conformance / "fixtures", "rbac"))

    def targets(file: str, doc: int, kind: str, concept: str = "rbac_pods_exec_attach") -> set[str]:
        fixture = f"rbac/{file}"
        label = harness.Label(1, "s", fixture, "rbac", concept, "fail", doc, None, kind, None, "n")
        return {f"{key[0]}#{key[1]}" for key in harness.label_targets(label, unit)}

    assert targets("binding.yaml", 0, "ClusterRoleBinding") == {
        "rbac/binding.yaml#0",
        "rbac/role.yaml#0",
    }
    # a roleRef to a Role means the Role of the binding's own namespace, not its namesake in "b"
    assert targets("binding.yaml", 1, "RoleBinding") == {"rbac/binding.yaml#1", "rbac/role.yaml#1"}
    assert targets("role.yaml", 1, "Role", "cluster_admin_binding") == {
        "rbac/role.yaml#1",
        "rbac/binding.yaml#1",
    }
    assert targets("role.yaml", 2, "Role") == {"rbac/role.yaml#2"}
    # other concepts score only the labelled object
    assert targets("binding.yaml", 0, "ClusterRoleBinding", "default_namespace") == {
        "rbac/binding.yaml#0"
    }


def test_file_granularity_uses_the_listed_objects_when_named(conformance: Path) -> None:
    listed = [{"doc_index": 1, "item_index": None}, {"doc_index": 2, "item_index": 1}]
    record = _record(None, "privileged_container", "fail", granularity="file", objects=listed)
    label = harness._label(record, 1)
    catalogue = load_catalogue([conformance / "rules"])
    report = harness.evaluate(conformance, catalogue, labels=[label])
    assert [o.verdict for o in report.outcomes] == ["FN"]


ENTRY = "exceptions:\n  - {source: a, concept: c, doc_index: 0, item_index: null, "


def test_a_crashing_scan_is_scored_as_error_not_fatal(conformance: Path) -> None:
    broken = conformance / "broken"
    broken.mkdir()
    # container_flag_true without its "field" param raises KeyError on the first workload
    (broken / "KS-9009.yaml").write_text(
        RULES["KS-9001.yaml"].replace("KS-9001", "KS-9009").replace("{field: privileged}", "{}")
    )
    report = harness.evaluate(conformance, load_catalogue([broken]))
    verdicts = {o.verdict for o in report.outcomes if o.label.concept == "privileged_container"}
    assert verdicts == {"error"}
    assert report.tally("source")["beta"].with_rule == 0.0
    assert any("the scan raised KeyError" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exceptions: [{source: a}]", "needs exactly the keys"),
        (f"{ENTRY}fixture: f.yaml, reason: peers are wrong}}\n", "https:// URL"),
        (f"{ENTRY}fixture: ../f.yaml, reason: 'https://x'}}\n", "must stay under fixtures/"),
        ("- just a list\n", "'exceptions' list"),
    ],
)
def test_malformed_exceptions_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "exceptions.yaml"
    path.write_text(text)
    with pytest.raises(harness.HarnessError, match=message):
        harness.load_exceptions(path)


def test_malformed_label_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(_record(0, "c", "maybe")) + "\n")
    with pytest.raises(harness.HarnessError, match=r"labels.jsonl:1: .*fail or pass"):
        harness.load_labels(path)


def test_script_skips_cleanly_without_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert harness.main(["--dir", str(tmp_path / "absent")]) == 0
    assert "skipped" in capsys.readouterr().out
