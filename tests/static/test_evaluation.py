"""Rules run batch by batch where files are read; rules that ask about other objects are
deferred to the end. The result must equal one pass with the whole scan's context."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.context import NeedsWholeScan, ScanContext
from kubesentinel.static.engine import ScanOptions, evaluate, scan_paths
from kubesentinel.static.inputs import discover
from kubesentinel.static.reader import read_batch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "k8s-manifests"

# Cross-object questions spread over files: a NetworkPolicy for one namespace only, a
# RoleBinding whose Role is in another file, a ServiceAccount that turns token mounting off.
FILES = {
    "a-deploy.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      serviceAccountName: api
      containers: [{name: api, image: "shop/api:1.0"}]
""",
    "b-deploy.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: front}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "front/web:1.0"}]
""",
    "c-netpol.yaml": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: front}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
""",
    "d-rbac.yaml": """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-secrets, namespace: shop}
subjects: [{kind: ServiceAccount, name: default, namespace: shop}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
""",
    "e-role.yaml": """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: shop}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list]}]
""",
    "f-sa.yaml": """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: api, namespace: shop}
automountServiceAccountToken: false
""",
}


def test_local_context_refuses_questions_about_other_objects() -> None:
    ctx = ScanContext.local(pss_version=(1, 30), allowed_registries=("ghcr.io",))
    assert ctx.pss_at_least(1, 30)
    assert ctx.allowed_registries == ("ghcr.io",)
    for ask in (
        lambda: ctx.objects,
        lambda: ctx.of_kind("Pod"),
        lambda: ctx.in_namespace("Role", "shop"),
        lambda: ctx.find("Namespace", "shop"),
        lambda: ctx.memo("index", dict),
    ):
        with pytest.raises(NeedsWholeScan):
            ask()


def _one_pass(paths: list[str]) -> list[object]:
    catalogue = builtin_catalogue()
    batch = read_batch(list(discover(paths)), catalogue.target_kinds)
    return list(evaluate(batch.objects, catalogue, ScanContext.build(batch.objects)))


def test_file_by_file_checks_equal_one_pass_with_the_whole_scan(tmp_path: Path) -> None:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    result = scan_paths([str(tmp_path)], builtin_catalogue(), ScanOptions(workers=1))
    assert result.findings == _one_pass([str(tmp_path)])
    by_rule = {(f.rule_id, f.obj.name) for f in result.findings}
    # The cross-object verdicts really were reached with the other files in view.
    assert ("KS-0067", "api") in by_rule  # shop runs workloads without a NetworkPolicy
    assert not any(rule == "KS-0067" and name == "web" for rule, name in by_rule)
    assert ("KS-0066", "read-secrets") in by_rule  # binds a Role to the default account
    assert ("KS-0061", "read-secrets") in by_rule  # the Role it binds (another file) reads secrets
    assert ("KS-0054", "web") not in by_rule  # the NetworkPolicy of another file selects it
    assert not any(name == "api" and rule == "KS-0051" for rule, name in by_rule)


def test_examples_scan_equals_one_pass_with_the_whole_scan() -> None:
    result = scan_paths([str(EXAMPLES)], builtin_catalogue(), ScanOptions(workers=1))
    assert result.findings
    assert result.findings == _one_pass([str(EXAMPLES)])


def test_each_finding_carries_its_rule_and_its_object_in_the_right_fields(
    tmp_path: Path,
) -> None:
    """Findings are built field by field in order, without keywords: every field must hold
    what its name says."""
    (tmp_path / "list.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - apiVersion: v1\n    kind: Namespace\n    metadata: {name: ns}\n"
        "  - apiVersion: v1\n    kind: Pod\n    metadata: {name: p, namespace: ns}\n"
        "    spec:\n      hostPID: true\n      containers: [{name: c, image: 'x:1'}]\n"
    )
    catalogue = builtin_catalogue()
    result = scan_paths([str(tmp_path)], catalogue, ScanOptions(workers=1))
    rules = {rule.id: rule for rule in catalogue.rules}
    host_pid = next(f for f in result.findings if f.rule_id == "KS-0002")
    rule = rules["KS-0002"]
    assert (host_pid.severity, host_pid.title, host_pid.remediation, host_pid.category) == (
        rule.severity, rule.title, rule.remediation, rule.category,
    )  # fmt: skip
    assert (host_pid.obj.kind, host_pid.obj.namespace, host_pid.obj.name) == ("Pod", "ns", "p")
    assert host_pid.obj.api_version == "v1"
    assert (host_pid.file, host_pid.doc_index, host_pid.item_index) == (
        str(tmp_path / "list.yaml"), 0, 1,
    )  # fmt: skip
    assert (host_pid.line, host_pid.object_line) == (11, 7)
    assert host_pid.field_path == "spec.hostPID"
    assert "hostPID" in host_pid.message
    for finding in result.findings:
        assert finding.rule_id in rules
        assert finding.severity == rules[finding.rule_id].severity
