"""`kubesentinel fix` as a library: edits, layout kept, rescans clean, safety on real files."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.models import Finding
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths
from kubesentinel.static.fix.defaults import FixDefaults, quantity
from kubesentinel.static.fix.documents import JSON_FACTORIES, read_manifest, splice
from kubesentinel.static.fix.edits import prepare
from kubesentinel.static.fix.run import FixResult, fix_paths, key_of
from kubesentinel.static.fix.specs import FIXES, specs_for
from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "k8s-manifests"

COMMENTED = """\
# Frontend: kept as written, comments and all.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the public name
  labels: {app: web, tier: "front"}
spec:
  template:
    spec:
      containers:
      - name: web
        image: "nginx:1.27"   # pinned
        args: ['--port', "8080"]
        securityContext:
          capabilities:
            add: [NET_RAW, NET_BIND_SERVICE]   # NET_RAW for ping
        # the data volume follows
      volumes:
        - name: data
          emptyDir: {}
"""

EXPECTED = """\
# Frontend: kept as written, comments and all.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the public name
  labels: {app: web, tier: "front"}
spec:
  template:
    spec:
      containers:
      - name: web
        image: "nginx:1.27"   # pinned
        args: ['--port', "8080"]
        securityContext:
          capabilities:
            add: [NET_BIND_SERVICE]          # NET_RAW for ping
            drop:
              - ALL
          allowPrivilegeEscalation: false
          runAsNonRoot: true
          seccompProfile:
            type: RuntimeDefault
          readOnlyRootFilesystem: true
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            cpu: 500m
            memory: 512Mi
        imagePullPolicy: Always
        # the data volume follows
      volumes:
        - name: data
          emptyDir: {}
      automountServiceAccountToken: false
"""


def _fix(paths: list[Path], defaults: FixDefaults | None = None) -> FixResult:
    return fix_paths(
        [str(p) for p in paths], builtin_catalogue(), ScanOptions(), defaults or FixDefaults()
    )


def _scan(paths: list[Path]) -> list[Finding]:
    result = scan_paths([str(p) for p in paths], builtin_catalogue(), ScanOptions())
    assert not result.errors
    return result.findings


def _write_all(result: FixResult) -> None:
    for fix in result.changed:
        Path(fix.path).write_text(fix.fixed)


def test_a_commented_manifest_keeps_comments_order_quoting_and_indentation(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(COMMENTED)
    result = _fix([manifest])
    (fix,) = result.files
    assert fix.fixed == EXPECTED
    left = {item.after.rule_id for item in result.left}
    assert "KS-0027" in left  # NET_BIND_SERVICE stays: a person decides
    assert "KS-0030" not in left
    assert "KS-0028" not in left


def test_multi_document_files_and_list_items_are_fixed_in_place(tmp_path: Path) -> None:
    manifest = tmp_path / "multi.yaml"
    manifest.write_text(
        "# leading comment\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n"
        "---\n\n"
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - apiVersion: v1\n    kind: Pod\n    metadata: {name: one}\n    spec:\n"
        "      containers:\n        - {name: c, image: 'busybox:1.36'}\n"
        "  - apiVersion: v1\n    kind: Pod\n    metadata: {name: two}\n    spec:\n"
        "      containers:\n        - name: c\n          image: busybox:1.36\n"
        "          securityContext: {privileged: true}\n"
    )
    before = _scan([manifest])
    result = _fix([manifest])
    _write_all(result)
    text = manifest.read_text()
    assert text.startswith("# leading comment\n---\napiVersion: v1\nkind: Service\n")
    assert "securityContext: {privileged: false" in text
    assert "- {name: c, image: 'busybox:1.36', securityContext: {" in text
    after = _scan([manifest])
    assert {key_of(f) for f in after} <= {key_of(f) for f in before}
    gone = {key_of(f) for f in before} - {key_of(f) for f in after}
    assert {k[0] for k in gone} >= {"KS-0001", "KS-0016", "KS-0026", "KS-0028"}
    assert {k[2] for k in gone} == {0, 1}  # both List items


def test_examples_rescan_without_the_fixed_findings_and_nothing_new(tmp_path: Path) -> None:
    copy = tmp_path / "k8s-manifests"
    shutil.copytree(EXAMPLES, copy)
    before = _scan([copy])
    result = _fix([copy])
    _write_all(result)
    after = _scan([copy])
    before_keys = {(f.file, *key_of(f)) for f in before}
    after_keys = {(f.file, *key_of(f)) for f in after}
    assert after_keys <= before_keys, "the fix added findings"
    web = str(copy / "bad" / "web-frontend.yaml")
    fixed = {k[1] for k in before_keys - after_keys if k[0] == web}
    assert fixed == {"KS-0016", "KS-0019", "KS-0020", "KS-0022", "KS-0026", "KS-0028",
                     "KS-0029", "KS-0033", "KS-0040", "KS-0041", "KS-0042", "KS-0043",
                     "KS-0051"}  # fmt: skip
    # runAsUser: 0 blocks runAsNonRoot (the pod would not start): left, with the reason.
    reasons = {i.after.rule_id: i.reason for i in result.left if i.after.file == web}
    assert "runAsUser is 0" in reasons["KS-0017"]
    assert "host" in reasons["KS-0006"]
    # The compact JSON example cannot keep its layout: untouched, and said so.
    assert (copy / "bad" / "batch-jobs.json").read_text() == (
        EXAMPLES / "bad" / "batch-jobs.json"
    ).read_text()
    assert any("batch-jobs.json" in f and "JSON layout" in m for f, m in result.messages)
    # The hardened example has nothing to fix.
    assert (copy / "good" / "payments-api.yaml").read_text() == (
        EXAMPLES / "good" / "payments-api.yaml"
    ).read_text()


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    copy = tmp_path / "bad"
    shutil.copytree(EXAMPLES / "bad", copy)
    _write_all(_fix([copy]))
    again = _fix([copy])
    assert again.changed == []
    assert sum(f.fixed_count for f in again.files) == 0


def test_kubectl_style_json_is_fixed_and_keeps_its_indentation(tmp_path: Path) -> None:
    import json

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}  # fmt: skip
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps(pod, indent=4) + "\n")
    (fix,) = _fix([manifest]).files
    data = json.loads(fix.fixed)
    assert data["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert data["spec"]["automountServiceAccountToken"] is False
    assert fix.fixed == json.dumps(data, indent=4) + "\n"


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
    text += "  - name: c\n    image: busybox:1.36\n"
    manifest.write_bytes(text.replace("\n", "\r\n").encode())
    (fix,) = _fix([manifest]).files
    assert "\r\n" in fix.fixed
    assert "\n" not in fix.fixed.replace("\r\n", "")
    assert "    securityContext:\r\n" in fix.fixed


def test_resource_defaults_never_put_a_request_above_its_limit(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: c\n    image: busybox:1.36\n    resources:\n"
        "      requests: {memory: 2Gi}\n      limits: {cpu: 50m}\n"
    )
    defaults = FixDefaults(requests_cpu="250m", limits_memory="1Gi")
    (fix,) = _fix([manifest], defaults).files
    assert "requests: {memory: 2Gi, cpu: 50m}" in fix.fixed
    assert "limits: {cpu: 50m, memory: 2Gi}" in fix.fixed


def test_seccomp_unconfined_becomes_runtime_default_and_empty_add_goes(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: c\n    image: busybox:1.36\n    securityContext:\n"
        "      seccompProfile:\n        type: Unconfined\n"
        "      capabilities:\n        add:\n        - SYS_ADMIN\n"
    )
    (fix,) = _fix([manifest]).files
    assert "type: RuntimeDefault" in fix.fixed
    assert "Unconfined" not in fix.fixed
    assert "add:" not in fix.fixed
    assert "SYS_ADMIN" not in fix.fixed
    assert "        drop:\n        - ALL\n" in fix.fixed


def test_pod_level_run_as_non_root_is_not_set_over_a_root_container(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: c\n    image: busybox:1.36\n    securityContext: {runAsUser: 0}\n"
    )
    result = _fix([manifest])
    assert "runAsNonRoot" not in result.files[0].fixed
    assert any(i.after.rule_id == "KS-0017" and "runAsUser is 0" in i.reason for i in result.left)


def test_malformed_yaml_is_an_error_and_other_files_are_still_fixed(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
    good = tmp_path / "good.yaml"
    good.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
                    "  - name: c\n    image: busybox:1.36\n")  # fmt: skip
    result = _fix([tmp_path])
    assert [e.file for e in result.errors] == [str(tmp_path / "broken.yaml")]
    assert result.errors[0].line is not None
    assert [f.name for f in result.changed] == [str(good)]


def test_helm_charts_are_left_with_a_message(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "pod.yaml").write_text("kind: Pod\nname: {{ .Values.name }}\n")
    result = _fix([tmp_path])
    assert result.files == []
    assert result.messages == [(str(chart), "helm sources are left as they are: fix the "
                                "templates or values")]  # fmt: skip


def test_a_template_that_parses_as_yaml_is_left(tmp_path: Path) -> None:
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        '  - name: c\n    image: "{{ .Values.image }}"\n'
    )
    result = _fix([manifest])
    assert result.changed == []
    assert result.messages == [
        (str(manifest), "left as it is: a Helm template ({{ .Values ... }}): fix the chart")
    ]
    assert all("template" in item.reason for item in result.left if item.after.rule_id == "KS-0016")


def test_a_document_whose_layout_cannot_be_kept_is_left_with_a_message(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    # A plain scalar the writer would rewrite (the "? " complex key form).
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        "    ? note\n    : hello\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n"
    )
    result = _fix([manifest])
    assert result.changed == []
    assert any("layout cannot be kept" in m for _, m in result.messages)
    assert any(i.reason.startswith("document left as it is") for i in result.left)


def test_splice_reindents_new_lines_as_the_file_around_them() -> None:
    # The file puts "- " under its key; the writer (style 2,4,2) indents it by two.
    original = "spec:\n  volumes:\n  - name: a\n    emptyDir: {}\nkind: X\n"
    before = "spec:\n  volumes:\n    - name: a\n      emptyDir: {}\nkind: X\n"
    after = (
        "spec:\n  volumes:\n    - name: a\n      emptyDir: {}\n      readOnly: true\n"
        "  automount: false\nkind: X\n"
    )
    assert splice(original, before, after) == (
        "spec:\n  volumes:\n  - name: a\n    emptyDir: {}\n    readOnly: true\n"
        "  automount: false\nkind: X\n"
    )
    assert splice("a: 1\nb: 2\n", "a: 1\n", "a: 2\n") is None


def test_documents_are_counted_as_the_scanner_counts_them() -> None:
    text = "# only a comment\n---\nkind: A\n---\n---\n# comment\n---\nkind: B\n"
    manifest = read_manifest(text, "x.yaml")
    assert [(d.index, d.data and d.data["kind"]) for d in manifest.documents] == [
        (None, None), (0, "A"), (None, None), (None, None), (1, "B")
    ]  # fmt: skip


def test_every_fix_names_a_catalogue_rule_and_a_known_action() -> None:
    rules = {rule.id for rule in builtin_catalogue().rules}
    assert set(FIXES) <= rules
    for rule_id in FIXES:
        for spec in specs_for(rule_id):
            assert spec.action in {"set", "seccomp", "drop_all", "remove_added", "resource"}


def test_a_sample_of_the_real_corpus_rescans_without_new_findings(tmp_path: Path) -> None:
    corpus = shared_path("corpus", "real")
    files = sorted(p for p in corpus.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    sample = random.Random(15).sample(files, 100)  # noqa: S311 (a fixed sample, not a secret)
    copies = []
    for index, source in enumerate(sample):
        copy = tmp_path / f"{index:03d}" / source.name
        copy.parent.mkdir()
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    before = scan_paths([str(p) for p in copies], builtin_catalogue(), ScanOptions())
    result = _fix(copies)
    _write_all(result)
    after = scan_paths([str(p) for p in copies], builtin_catalogue(), ScanOptions())
    assert [e.file for e in after.errors] == [e.file for e in before.errors]
    before_keys = {(f.file, *key_of(f)) for f in before.findings}
    after_keys = {(f.file, *key_of(f)) for f in after.findings}
    assert after_keys <= before_keys, sorted(after_keys - before_keys)[:5]
    fixable = {k for k in before_keys if k[1] in FIXES}
    gone = fixable - after_keys
    # Most fixable findings go; the rest are listed with a reason (guards, kept layouts).
    assert len(gone) >= 0.8 * len(fixable), (len(gone), len(fixable))
    left_keys = {(i.after.file, *key_of(i.after)) for i in result.left}
    assert fixable - gone <= left_keys


@pytest.mark.parametrize(
    ("container", "rule", "path", "why"),
    [
        ({"securityContext": {"capabilities": {"drop": "ALL"}}}, "KS-0028",
         "securityContext.capabilities.drop", "capabilities.drop is not a list"),
        ({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, "KS-0031",
         "securityContext.capabilities.add", "does not name one added capability"),
        ({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, "KS-0031",
         "securityContext.capabilities.add[3]", "no such capability"),
        ({"securityContext": "x"}, "KS-0016", "securityContext.allowPrivilegeEscalation",
         "securityContext is not a mapping"),
        ({"resources": {"requests": {"cpu": "lots"}}}, "KS-0041", "resources.limits.cpu",
         "resources.requests.cpu 'lots' is not a quantity"),
        ({}, "KS-0002", "hostPID", "no mechanical fix"),
        ({}, "KS-0048", "image", "the finding's path does not lead to imagePullPolicy"),
    ],
)  # fmt: skip
def test_edits_say_why_they_cannot_apply(
    container: dict[str, Any], rule: str, path: str, why: str
) -> None:
    pod = {"spec": {"containers": [{"name": "c", **container}]}}
    found = prepare(pod, rule, f"spec.containers[0].{path}", FixDefaults(), JSON_FACTORIES)
    assert isinstance(found, str)
    assert why in found
    assert prepare(pod, "KS-0016", "spec.containers[5].securityContext.x", FixDefaults(),
                   JSON_FACTORIES) == "no object at spec.containers[5]"  # fmt: skip


def test_quantities_parse_as_the_api_server_reads_them() -> None:
    assert quantity("500m") == 0.5
    assert quantity(".5") == 0.5
    assert quantity("1Gi") == 2.0**30
    assert quantity(2) == 2.0
    assert quantity("1e3") == 1000.0
    assert quantity("1E") == 1e18  # exa, not an exponent
    assert quantity("1x") is None
    assert quantity(True) is None
