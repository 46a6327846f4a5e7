"""scan --baseline / --write-baseline, config skips and annotations through the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.cli import main

PRIVILEGED = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: prod{annotations}
spec:
  containers:
    - name: app
      image: registry.example/app:1.0
      securityContext:
        privileged: true
"""
ANNOTATION = '\n  annotations:\n    kubesentinel.io/skip: "KS-0001=accepted: lab only"'


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_suppressed_findings_never_fail_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = tmp_path / "pod.yaml"
    args = ["scan", "-p", str(pod), "--severity-threshold", "critical", "-f", "json"]
    pod.write_text(PRIVILEGED.format(annotations=""))
    assert main(args) == 1
    capsys.readouterr()
    pod.write_text(PRIVILEGED.format(annotations=ANNOTATION))
    assert main(args) == 0
    document = _json(capsys)
    assert document["findings"] == []
    suppressed = document["suppressed"]
    assert isinstance(suppressed, list)
    assert len(suppressed) == 1
    assert suppressed[0]["suppression"]["reason"] == "accepted: lab only"


def test_write_baseline_then_baseline_reports_only_new_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(PRIVILEGED.format(annotations=""))
    assert main(["scan", "-p", "pod.yaml", "--write-baseline", "b.json"]) == 0  # accepted
    err = capsys.readouterr().err
    stored = json.loads(Path("b.json").read_text())["findings"]
    assert f"wrote baseline b.json ({len(stored)} findings)" in err
    assert main(["scan", "-p", "pod.yaml", "--baseline", "b.json", "-f", "json"]) == 0
    document = _json(capsys)
    summary = document["summary"]
    assert isinstance(summary, dict)
    assert summary["findings"] == 0
    assert summary["suppressed"] > 0
    # A new problem is reported (exit 1); the baselined ones stay suppressed.
    Path("pod.yaml").write_text(
        PRIVILEGED.format(annotations="").replace("spec:\n", "spec:\n  hostPID: true\n", 1)
    )
    assert main(["scan", "-p", "pod.yaml", "--baseline", "b.json", "-f", "json"]) == 1
    document = _json(capsys)
    assert {f["rule_id"] for f in document["findings"]} == {"KS-0002"}
    reasons = {s["suppression"]["reason"] for s in document["suppressed"]}
    assert reasons == {"baseline"}


def test_rewriting_a_baseline_drops_fixed_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(
        PRIVILEGED.format(annotations="").replace("spec:\n", "spec:\n  hostPID: true\n", 1)
    )
    assert main(["scan", "-p", "pod.yaml", "--write-baseline", "b.json", "-q"]) == 0
    before = {e["rule_id"] for e in json.loads(Path("b.json").read_text())["findings"]}
    assert "KS-0002" in before
    Path("pod.yaml").write_text(PRIVILEGED.format(annotations=""))  # hostPID fixed
    args = ["scan", "-p", "pod.yaml", "--baseline", "b.json", "--write-baseline", "b.json", "-q"]
    assert main(args) == 0
    after = {e["rule_id"] for e in json.loads(Path("b.json").read_text())["findings"]}
    assert after == before - {"KS-0002"}
    capsys.readouterr()


def test_annotation_and_config_suppressions_stay_out_of_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(PRIVILEGED.format(annotations=ANNOTATION))
    Path("c.yaml").write_text("static:\n  skip:\n    - rule: KS-0022\n      reason: SEC-12\n")
    assert main(["--config", "c.yaml", "scan", "-p", "pod.yaml", "--write-baseline", "b.json"]) == 0
    stored = {e["rule_id"] for e in json.loads(Path("b.json").read_text())["findings"]}
    assert stored
    assert not stored & {"KS-0001", "KS-0022"}
    capsys.readouterr()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read baseline"),
        ("{\n  oops", "b.json:2: baseline is not valid JSON"),
        ('{"format": "kubesentinel-baseline", "version": 9, "findings": []}', "version 9"),
    ],
)
def test_bad_baseline_exits_2_with_the_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    fragment: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(PRIVILEGED.format(annotations=""))
    if content is not None:
        Path("b.json").write_text(content)
    assert main(["scan", "-p", "pod.yaml", "--baseline", "b.json"]) == 2
    captured = capsys.readouterr()
    assert "KS-E040" in captured.err
    assert fragment in captured.err
    assert captured.out == ""  # no report from a scan that could not apply its baseline


def test_config_skip_with_unknown_rule_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("static:\n  skip:\n    - rule: KS-0001\n    - rule: KS-9999\n")
    pod = tmp_path / "pod.yaml"
    pod.write_text(PRIVILEGED.format(annotations=""))
    assert main(["--config", str(config), "scan", "-p", str(pod)]) == 2
    assert f"KS-E002: {config}:4: static.skip: unknown rule id 'KS-9999'" in capsys.readouterr().err


def test_config_skip_by_path_glob_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("vendor").mkdir()
    Path("vendor/pod.yaml").write_text(PRIVILEGED.format(annotations=""))
    Path("c.yaml").write_text("static:\n  skip:\n    - path: 'vendor/*'\n      reason: vendored\n")
    assert main(["--config", "c.yaml", "scan", "-p", "./vendor", "-f", "sarif"]) == 0
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert results
    assert all(r["suppressions"][0]["kind"] == "external" for r in results)
    assert {r["suppressions"][0]["justification"] for r in results} == {"vendored"}


def test_all_findings_restores_one_finding_per_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(PRIVILEGED.format(annotations=""))
    args = ["scan", "-p", str(pod), "-f", "json", "--severity-threshold", "low"]
    assert main(args) == 1
    folded = _json(capsys)["findings"]
    assert main([*args, "--all-findings"]) == 1
    single = _json(capsys)["findings"]
    (privileged,) = [f for f in folded if f["rule_id"] == "KS-0001"]
    assert privileged["folded"] == ["KS-0016", "KS-0022"]
    assert all(f["folded"] == [] for f in single)
    assert len(single) == len(folded) + sum(len(f["folded"]) for f in folded)
    assert {f["rule_id"] for f in single} == {
        rule_id for f in folded for rule_id in (f["rule_id"], *f["folded"])
    }


def test_a_baseline_of_folded_findings_holds_every_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pod.yaml").write_text(PRIVILEGED.format(annotations=""))
    assert main(["scan", "-p", "pod.yaml", "--write-baseline", "b.json", "-q"]) == 0
    capsys.readouterr()
    stored = {entry["rule_id"] for entry in json.loads(Path("b.json").read_text())["findings"]}
    assert {"KS-0001", "KS-0016", "KS-0022"} <= stored
    for extra in ([], ["--all-findings"]):
        args = ["scan", "-p", "pod.yaml", "--baseline", "b.json", "-f", "json", *extra]
        assert main([*args, "--severity-threshold", "low"]) == 0
        assert _json(capsys)["findings"] == []


def test_one_annotation_on_the_implier_covers_the_implied_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(PRIVILEGED.format(annotations=ANNOTATION))
    for extra in ([], ["--all-findings"]):
        args = ["scan", "-p", str(pod), "-f", "json", "--severity-threshold", "low", *extra]
        main(args)
        document = _json(capsys)
        reported = {f["rule_id"] for f in document["findings"]}
        assert not reported & {"KS-0001", "KS-0016", "KS-0022"}
        suppressed = [(s["rule_id"], s["folded"]) for s in document["suppressed"]]
        if extra:
            assert sorted(suppressed) == [("KS-0001", []), ("KS-0016", []), ("KS-0022", [])]
        else:
            assert suppressed == [("KS-0001", ["KS-0016", "KS-0022"])]
