"""CEL rules with the real CEL runtime: loading, VAP semantics, runtime errors, load errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kubesentinel.errors import RuleError
from kubesentinel.models import Finding
from kubesentinel.static.catalogue import (
    CEL_PREDICATE,
    builtin_catalogue,
    load_catalogue,
    load_rule_file,
)
from kubesentinel.static.engine import ScanOptions, scan_paths

HEAD = """\
id: ACME-0001
title: Test rule
severity: high
category: custom
description: A test rule.
remediation: Fix it.
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: app
          image: nginx:latest
        - name: sidecar
          image: ghcr.io/example/proxy:1.2
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: dump
              image: postgres:16
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
"""


def rule_file(tmp_path: Path, body: str, head: str = HEAD, name: str = "rule.yaml") -> Path:
    path = tmp_path / name
    path.write_text(head + textwrap.dedent(body))
    return path


def scan(tmp_path: Path, rule: Path, manifest: str = DEPLOYMENT) -> list[Finding]:
    target = tmp_path / "manifests.yaml"
    target.write_text(manifest)
    catalogue = load_catalogue([rule])
    result = scan_paths([str(target)], catalogue, ScanOptions(workers=1))
    assert not result.errors
    return result.findings


def load_error(tmp_path: Path, body: str, head: str = HEAD) -> RuleError:
    path = rule_file(tmp_path, body, head)
    with pytest.raises(RuleError) as info:
        load_catalogue([path], builtin_catalogue().rules)
    assert info.value.file == str(path)
    assert info.value.exit_code == 2
    return info.value


# --- loading and evaluation ---------------------------------------------------------------------


def test_a_cel_rule_loads_with_the_same_metadata_as_builtins(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [workloads]
        validations:
          - expression: "object.spec.replicas >= 2"
            message: at least two replicas
        """)  # fmt: skip
    (rule,) = load_rule_file(path)
    assert (rule.id, rule.predicate, rule.source_file) == ("ACME-0001", CEL_PREDICATE, str(path))
    assert {"Deployment", "CronJob"} <= set(rule.kinds)
    assert rule.params["program"].describe() == ["must hold: object.spec.replicas >= 2"]


def test_false_is_a_violation_true_is_not(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [Deployment]
        validations:
          - expression: "object.spec.replicas >= 2"
            message: at least two replicas
          - expression: "object.metadata.namespace != 'default'"
            message: never reported, this holds
        """)  # fmt: skip
    (finding,) = scan(tmp_path, path)
    assert (finding.rule_id, finding.obj.name, finding.message) == (
        "ACME-0001",
        "web",
        "at least two replicas",
    )
    assert finding.severity.label == "high"
    assert finding.remediation == "Fix it."
    assert finding.line == 1  # the object's line: no fieldPath given
    assert finding.field_path == ""


def test_message_expression_default_message_and_fallbacks(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [Deployment]
        validations:
          - expression: "object.spec.replicas >= 2"
            messageExpression: "'only ' + string(object.spec.replicas) + ' replica'"
          - expression: "object.spec.replicas > 5"
          - expression: "object.spec.replicas > 6"
            message: static text wins when messageExpression fails
            messageExpression: "object.spec.missing + 'x'"
          - expression: "object.spec.replicas > 7"
            message: static text wins over a blank messageExpression
            messageExpression: "'  '"
        """)  # fmt: skip
    messages = {f.message for f in scan(tmp_path, path)}
    assert messages == {
        "only 1 replica",
        "failed expression: object.spec.replicas > 5",
        "static text wins when messageExpression fails",
        "static text wins over a blank messageExpression",
    }


def test_pod_spec_covers_every_workload_kind_and_is_null_elsewhere(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [workloads, Service]
        validations:
          - expression: "podSpec == null || podSpec.containers.all(c, !c.image.endsWith(':latest')
              && c.image.contains(':'))"
            messageExpression: "object.kind + ' runs an unpinned image'"
          - expression: "podSpec != null"
            messageExpression: "object.kind + ' has no pod spec'"
        """)  # fmt: skip
    found = {(f.obj.kind, f.message) for f in scan(tmp_path, path)}
    assert found == {
        ("Deployment", "Deployment runs an unpinned image"),
        ("Service", "Service has no pod spec"),
    }


def test_vap_library_optional_strings_bind_and_request(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [Deployment]
        validations:
          - expression: "object.metadata.?annotations[?'owner'].orValue('') != ''"
            message: no owner annotation
          - expression: "podSpec.containers.map(c, c.name).join(',') == 'app'"
            messageExpression: "'containers: ' + podSpec.containers.map(c, c.name).join(',')"
          - expression: "cel.bind(n, object.metadata.name, n.upperAscii() == 'WEB')"
            message: never reported
          - expression: >-
              request.operation == 'CREATE' && request.kind.kind == 'Deployment'
              && request.kind.group == 'apps' && oldObject == null
            message: never reported
        """)  # fmt: skip
    assert {f.message for f in scan(tmp_path, path)} == {
        "no owner annotation",
        "containers: app,sidecar",
    }


def test_variables_are_evaluated_in_order(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [workloads]
        variables:
          - name: images
            expression: "podSpec.containers.map(c, c.image)"
          - name: foreign
            expression: "variables.images.filter(i, !i.startsWith('ghcr.io/example/'))"
        validations:
          - expression: "size(variables.foreign) == 0"
            messageExpression: "'foreign images: ' + variables.foreign.join(', ')"
        """)  # fmt: skip
    found = {(f.obj.name, f.message) for f in scan(tmp_path, path)}
    assert found == {
        ("web", "foreign images: nginx:latest"),
        ("backup", "foreign images: postgres:16"),
    }


def test_a_runtime_error_is_reported_as_a_violation_and_the_scan_goes_on(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [Deployment, CronJob]
        validations:
          - expression: "object.spec.replicas >= 1"
            message: never reported for web
        """)  # fmt: skip
    (finding,) = scan(tmp_path, path)  # the CronJob has no spec.replicas; no has() guard
    assert finding.obj.name == "backup"
    assert finding.message.startswith(f"CEL expression at {path}:9 could not be evaluated (")
    assert "replicas" in finding.message
    assert "failurePolicy: Fail" in finding.message


def test_a_failed_variable_is_named_where_it_is_used(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [Deployment]
        variables:
          - name: replicas
            expression: "object.spec.nope"
        validations:
          - expression: "variables.replicas > 1"
        """)  # fmt: skip
    (finding,) = scan(tmp_path, path)
    assert "variables.replicas failed: " in finding.message
    assert "nope" in finding.message


def test_a_non_bool_result_at_run_time_is_an_error_not_a_pass(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [Deployment]
        validations:
          - expression: "object.spec.replicas"
        """)  # fmt: skip
    (finding,) = scan(tmp_path, path)
    assert "returned int, not a bool" in finding.message


def test_field_path_points_the_finding_at_the_field(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: [Deployment, Service]
        validations:
          - expression: "podSpec == null || !podSpec.containers[0].image.endsWith(':latest')"
            message: latest tag
            fieldPath: "spec.template.spec.containers[0].image"
          - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
            message: no team label
            fieldPath: "metadata.labels['team']"
        """)  # fmt: skip
    found = {(f.obj.kind, f.message, f.line, f.field_path) for f in scan(tmp_path, path)}
    assert found == {
        ("Deployment", "latest tag", 13, "spec.template.spec.containers[0].image"),
        ("Deployment", "no team label", 1, "metadata.labels.team"),  # absent: object's line
        ("Service", "no team label", 30, "metadata.labels.team"),
    }


def test_a_cel_rule_on_every_kind_sees_whole_objects_of_any_kind(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: ["*"]
        validations:
          - expression: "!has(object.spec) || !has(object.spec.size) || object.spec.size < 10"
            messageExpression: "object.kind + ' too big'"
        """)  # fmt: skip
    manifest = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 12}\n"
    (finding,) = scan(tmp_path, path, manifest)
    assert (finding.obj.kind, finding.message) == ("Widget", "Widget too big")


def test_several_rules_in_one_file_share_the_converted_object(tmp_path: Path) -> None:
    second = HEAD.replace("ACME-0001", "ACME-0002")
    body = "kinds: [Deployment]\nvalidations:\n  - expression: \"object.metadata.name != 'web'\"\n"
    path = rule_file(tmp_path, body + "---\n" + second + body)
    assert sorted(f.rule_id for f in scan(tmp_path, path)) == ["ACME-0001", "ACME-0002"]


# --- load errors: file, line, CEL error ---------------------------------------------------------


def test_a_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
        kinds: [Pod]
        validations:
          - message: ok
            expression: "object.spec.replicas >"
        """)  # fmt: skip
    assert error.line == 10
    assert "CEL error in validations[0].expression (expression line 1, column 23)" in error.message
    assert "Syntax error" in error.message


def test_an_error_inside_a_literal_block_points_at_its_own_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
        kinds: [Pod]
        validations:
          - expression: |
              has(object.spec) &&
              object.spec.containers.all(c, c.image.startsWith(1))
        """)  # fmt: skip
    assert error.line == 11
    assert "no matching overload for 'startsWith'" in error.message
    assert "(expression line 2, column" in error.message


def test_an_error_inside_a_folded_block_points_at_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, """\
        kinds: [Pod]
        validations:
          - expression: >-
              has(object.spec)
              && object.spec.containers.exists(c, foo(c))
        """)  # fmt: skip
    assert error.line == 11
    assert "undeclared reference to 'foo'" in error.message


def test_type_errors_are_caught_at_load_time(tmp_path: Path) -> None:
    error = load_error(tmp_path, "kinds: [Pod]\nvalidations:\n  - expression: \"1 + 'a' == 2\"\n")
    assert error.line == 9
    assert "no matching overload for '_+_' applied to '(int, string)'" in error.message
    error = load_error(tmp_path, "kinds: [Pod]\nvalidations:\n  - expression: \"'abc'\"\n")
    assert error.line == 9
    assert "validations[0].expression must evaluate to bool, but its type is string" in str(error)
    error = load_error(
        tmp_path,
        "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n    messageExpression: '1 + 2'\n",
    )
    assert error.line == 10
    assert "messageExpression must evaluate to string, but its type is int" in error.message


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("kinds: [Pod]\nvalidations: []\n", 8, "validations must be a list of mappings"),
        ("kinds: [Pod]\nvalidations: [true]\n", 8, "each item of validations must be a mapping"),
        ("kinds: [Pod]\nvalidations:\n  - message: x\n", 9, "validations[0] has no 'expression'"),
        (
            "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n    mesage: x\n",
            10,
            "unknown key 'mesage' in validations[0] (allowed: expression, message,",
        ),
        (
            "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n    reason: Bad\n",
            10,
            "validations[0].reason must be one of Unauthorized, Forbidden, Invalid",
        ),
        (
            "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n    fieldPath: 'spec..x'\n",
            10,
            "validations[0].fieldPath 'spec..x': cannot read it from column 5",
        ),
        (
            "kinds: [Pod]\nvalidations:\n  - expression: 'variables.x'\n",
            9,
            "validations[0].expression reads variables.x, which is not defined before it",
        ),
        (
            "kinds: [Pod]\nvariables:\n  - name: b\n    expression: variables.a\n"
            "  - name: a\n    expression: '1'\nvalidations:\n  - expression: 'true'\n",
            10,
            "variables[0].expression reads variables.a, which is not defined before it",
        ),
        (
            "kinds: [Pod]\nvariables:\n  - name: a\n    expression: '1'\n"
            "  - name: a\n    expression: '2'\nvalidations:\n  - expression: 'true'\n",
            11,
            "variables[1].name 'a' is defined twice",
        ),
        (
            "kinds: [Pod]\nvariables:\n  - name: my-var\n    expression: '1'\n"
            "validations:\n  - expression: 'true'\n",
            9,
            "variables[0].name 'my-var' must be a CEL identifier",
        ),
        (
            "kinds: [Pod]\nparams: {a: 1}\nvalidations:\n  - expression: 'true'\n",
            8,
            "unknown key 'params'",
        ),
        (
            "kinds: [Pod]\npredicate: pod_flag_true\nvalidations:\n  - expression: 'true'\n",
            8,
            "unknown key 'predicate'",
        ),
        ("kinds: [Pod]\n", 1, "a rule needs either 'predicate' (a built-in check) or 'validat"),
        ("kinds: [Pod]\npredicate: cel\n", 8, "unknown predicate 'cel'"),
    ],
)
def test_broken_rules_name_the_line_and_the_problem(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    error = load_error(tmp_path, body)
    assert (error.line, error.code) == (line, "KS-E020")
    assert message in error.message


def test_missing_id_and_duplicate_builtin_id_are_errors(tmp_path: Path) -> None:
    body = "kinds: [Pod]\nvalidations:\n  - expression: 'true'\n"
    error = load_error(tmp_path, body, HEAD.replace("id: ACME-0001\n", ""))
    assert (error.line, error.message) == (1, "missing key 'id'")
    error = load_error(tmp_path, body, HEAD.replace("ACME-0001", "KS-0001"))
    assert error.message.startswith("duplicate rule id KS-0001 (also in ")


def test_the_rule_in_the_docs_and_the_readme_loads_and_runs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    for doc in (root / "docs" / "custom-rules.md", root / "README.md"):
        text = doc.read_text(encoding="utf-8")
        start = text.index("```yaml\nid: ACME-0003") + len("```yaml\n")
        path = tmp_path / "doc-rule.yaml"
        path.write_text(text[start : text.index("```", start)])
        findings = scan(tmp_path, path)
        assert {(f.rule_id, f.obj.name) for f in findings} == {
            ("ACME-0003", "web"),
            ("ACME-0003", "backup"),
        }, doc
