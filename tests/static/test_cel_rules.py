"""CEL rules with the real CEL runtime: VAP semantics on objects, messages, runtime errors."""

from __future__ import annotations

from pathlib import Path

from kubesentinel.static.catalogue import CEL_PREDICATE, load_catalogue, load_rule_file
from kubesentinel.static.engine import ScanOptions, scan_paths
from kubesentinel.static.parallel import PARALLEL_MIN_BYTES
from tests.static.cel_helpers import HEAD, rule_file, scan


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
        # absent: the deepest part of the path that exists, labels or else metadata
        ("Deployment", "no team label", 6, "metadata.labels.team"),
        ("Service", "no team label", 32, "metadata.labels.team"),
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


def test_the_rule_in_the_docs_loads_and_runs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    for doc in (root / "docs" / "custom-rules.md", root / "docs" / "scanning.md"):
        text = doc.read_text(encoding="utf-8")
        start = text.index("```yaml\nid: ACME-0003") + len("```yaml\n")
        path = tmp_path / "doc-rule.yaml"
        path.write_text(text[start : text.index("```", start)])
        findings = scan(tmp_path, path)
        assert {(f.rule_id, f.obj.name) for f in findings} == {
            ("ACME-0003", "web"),
            ("ACME-0003", "backup"),
        }, doc


def test_parallel_reading_gives_cel_rules_the_same_whole_objects(tmp_path: Path) -> None:
    path = rule_file(tmp_path, """\
        kinds: ["*"]
        validations:
          - expression: "object.?spec.?size.orValue(0) < 5"
            messageExpression: "object.metadata.name + ' too big'"
        """)  # fmt: skip
    pad = "x" * 4000
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w-{i}\n"
    widget += "  annotations: {{pad: " + pad + "}}\nspec: {{size: {size}}}\n"
    data = tmp_path / "data"
    data.mkdir()
    for n in range(30):
        docs = [widget.format(i=f"{n}-{i}", size=i % 10) for i in range(20)]
        (data / f"w{n}.yaml").write_text("---\n".join(docs))
    assert sum(f.stat().st_size for f in data.iterdir()) > PARALLEL_MIN_BYTES
    catalogue = load_catalogue([path])
    serial = scan_paths([str(data)], catalogue, ScanOptions(workers=1))
    parallel = scan_paths([str(data)], catalogue, ScanOptions(workers=2))
    assert len(serial.findings) == 300  # sizes 5..9 of 600 widgets
    assert serial.findings == parallel.findings
    assert serial.findings[0].message == "w-0-5 too big"
