"""Baseline files: round trip, identity that survives line moves, paths, and bad files."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from kubesentinel.errors import BaselineError
from kubesentinel.static.baseline import FORMAT, dumps, load_baseline, write_baseline
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, ScanResult, scan_paths
from kubesentinel.static.suppress import build, canonical_ids

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: prod
spec:
  hostPID: true
  containers:
    - name: app
      image: registry.example/web:1.0
      securityContext:
        privileged: true
"""


def _scan(path: str, baseline: str | None = None) -> ScanResult:
    rules = builtin_catalogue().rules
    options = ScanOptions(suppressor=build(rules, (), baseline))
    return scan_paths([path], builtin_catalogue(), options)


def test_round_trip_suppresses_every_finding_with_reason_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(POD)
    first = _scan("pod.yaml")
    assert first.findings
    count = write_baseline("baseline.json", first.findings)
    assert count == len({(f.rule_id, f.field_path) for f in first.findings})
    second = _scan("pod.yaml", "baseline.json")
    assert second.findings == []
    assert {s.finding for s in second.suppressed} == set(first.findings)
    assert {(s.suppression.kind, s.suppression.reason) for s in second.suppressed} == {
        ("baseline", "baseline")
    }
    assert {s.suppression.file for s in second.suppressed} == {"baseline.json"}


def test_identity_survives_lines_moving_but_not_a_new_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(POD)
    write_baseline("baseline.json", _scan("pod.yaml").findings)
    # Comments above move every line; a new hostNetwork finding is new and must be reported.
    moved = "# moved\n# down\n" + POD.replace(
        "  hostPID: true\n", "  hostPID: true\n  hostNetwork: true\n"
    )
    Path("pod.yaml").write_text(moved)
    result = _scan("pod.yaml", "baseline.json")
    assert {f.rule_id for f in result.findings} == {"KS-0004"}
    assert all(s.finding.line > 2 for s in result.suppressed)
    # The same problem in another container is another field path: reported.
    Path("pod.yaml").write_text(
        POD + "    - name: second\n      image: x:1\n      securityContext:\n"
        "        privileged: true\n"
    )
    new = {(f.rule_id, f.field_path) for f in _scan("pod.yaml", "baseline.json").findings}
    assert ("KS-0001", "spec.containers[1].securityContext.privileged") in new
    assert ("KS-0001", "spec.containers[0].securityContext.privileged") not in new


def test_paths_are_relative_to_the_baseline_so_cwd_and_absolute_paths_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "pod.yaml").write_text(POD)
    monkeypatch.chdir(tmp_path)
    write_baseline("ks-baseline.json", _scan("deploy/pod.yaml").findings)
    stored = json.loads(Path("ks-baseline.json").read_text())
    assert {entry["file"] for entry in stored["findings"]} == {"deploy/pod.yaml"}
    monkeypatch.chdir(tmp_path / "deploy")
    assert _scan("pod.yaml", "../ks-baseline.json").findings == []
    assert (
        _scan(str(tmp_path / "deploy" / "pod.yaml"), str(tmp_path / "ks-baseline.json")).findings
        == []
    )


def test_file_is_versioned_sorted_and_one_finding_per_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(POD)
    findings = _scan("pod.yaml").findings
    text = dumps(reversed(findings + findings), str(tmp_path))
    assert text == dumps(findings, str(tmp_path))  # order and duplicates do not matter
    document = json.loads(text)
    assert (document["format"], document["version"]) == (FORMAT, 1)
    entries = document["findings"]
    assert entries == sorted(entries, key=lambda e: (e["rule_id"], e["field_path"]))
    assert entries[0] == {
        "rule_id": entries[0]["rule_id"],
        "file": "pod.yaml",
        "kind": "Pod",
        "namespace": "prod",
        "name": "web",
        "field_path": entries[0]["field_path"],
    }
    assert len(text.splitlines()) == len(entries) + 6
    empty = dumps([], str(tmp_path))
    assert json.loads(empty)["findings"] == []


def test_old_rule_ids_in_a_baseline_match_through_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(POD)
    write_baseline("b.json", _scan("pod.yaml").findings)
    text = Path("b.json").read_text().replace('"KS-0002"', '"OLD-2"')
    Path("b.json").write_text(text)
    rules = tuple(
        replace(r, aliases=("old-2",)) if r.id == "KS-0002" else r
        for r in builtin_catalogue().rules
    )
    baseline = load_baseline("b.json", canonical_ids(rules))
    assert any(key[0] == "KS-0002" for key in baseline.keys)
    assert not any(key[0] == "OLD-2" for key in baseline.keys)


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        (None, None, "cannot read baseline"),
        (
            b'{\n  "format": "kubesentinel-baseline",\n  "version": 1,\n  oops\n}',
            4,
            "not valid JSON",
        ),
        (b"\xff\xfe", None, "not UTF-8"),
        (b"[]", None, "not a KubeSentinel baseline"),
        (b'{"format": "other"}', None, "not a KubeSentinel baseline"),
        (b'{"format": "kubesentinel-baseline", "version": 2, "findings": []}', None, "version 2"),
        (b'{"format": "kubesentinel-baseline", "version": 1}', None, 'no "findings" list'),
        (
            b'{"format": "kubesentinel-baseline", "version": 1, "findings": [1]}',
            None,
            "findings[0] must be an object",
        ),
        (
            b'{"format": "kubesentinel-baseline", "version": 1, '
            b'"findings": [{"rule_id": "KS-0001"}]}',
            None,
            "findings[0].file must be a string",
        ),
    ],
)
def test_bad_baseline_files_are_clear_errors(
    tmp_path: Path, content: bytes | None, line: int | None, fragment: str
) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BaselineError) as info:
        load_baseline(str(path))
    assert info.value.exit_code == 2
    assert info.value.code == "KS-E040"
    assert (info.value.file, info.value.line) == (str(path), line)
    assert fragment in info.value.message


def test_write_is_atomic_and_errors_name_the_file(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "b.json"
    with pytest.raises(BaselineError) as info:
        write_baseline(str(target), [])
    assert info.value.file == str(target)
    assert not os.listdir(tmp_path)  # no temporary file left behind
