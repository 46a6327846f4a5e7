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
