"""End to end through the CLI: simulate a cluster, scan its manifests, replay its Falco stream.

The bridge: incidents on misconfigured workloads carry their static findings and score higher.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubesentinel.cli import main
from kubesentinel.runtime.deadletter import read_dead_letter


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--out", str(out), "--seed", "3", "--hours", "1"]) == 0
    posture = out / "posture.json"
    assert main(["scan", "--path", str(out / "manifests"), "--format", "json",
                 "--severity-threshold", "low", "--output", str(posture)]) == 1  # fmt: skip
    store = out / "ks.db"
    summary_file = out / "summary.json"
    code = main(["monitor", "--source", str(out / "falco.jsonl"), "--until-eof", "--format",
                 "json", "--posture", str(posture), "--store", str(store), "--cluster", "sim",
                 "--dead-letter", str(out / "dead.jsonl")])  # fmt: skip
    assert code == 0
    labels = json.loads((out / "labels.json").read_text())
    return {"out": out, "store": store, "labels": labels, "summary_file": summary_file}


def _incidents(capsys: pytest.CaptureFixture[str], store: object) -> list[dict[str, object]]:
    capsys.readouterr()
    assert (
        main(["incidents", "list", "--store", str(store), "--format", "json", "--limit", "500"])
        == 0
    )
    incidents: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return incidents


def test_every_labelled_attack_becomes_an_incident_with_its_rules(
    replay: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    incidents = _incidents(capsys, replay["store"])
    labels = replay["labels"]
    assert isinstance(labels, dict)
    for scenario in labels["scenarios"]:
        key = f"sim/{scenario['workload']['key']}"
        matching = [
            i for i in incidents
            if i["workload"]["key"] == key  # type: ignore[index]
            and i["first_ns"] <= scenario["start_ns"] <= i["last_ns"]  # type: ignore[operator]
        ]  # fmt: skip
        assert matching, f"no incident covers scenario {scenario['id']} on {key}"
        rules = {r["rule"] for r in matching[0]["rules"]}  # type: ignore[index, union-attr]
        assert set(scenario["rules"]) <= rules
        assert matching[0]["severity"] in ("high", "critical"), scenario["id"]


def test_bridge_posture_is_attached_to_misconfigured_workloads(
    replay: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    incidents = _incidents(capsys, replay["store"])
    storefront = [i for i in incidents if i["workload"]["name"] == "storefront"]  # type: ignore[index]
    assert storefront
    assert "KS-0001" in storefront[0]["posture"]  # type: ignore[operator]  # privileged
    assert any("posture" in r["reason"] for r in storefront[0]["reasons"])  # type: ignore[union-attr]


def test_monitor_reads_stdin_and_dead_letters_garbage(tmp_path: Path) -> None:
    sample = (
        '{"output":"x","priority":"Warning","rule":"Terminal shell in container",'
        '"time":"2026-01-01T00:00:00.000000000Z","output_fields":{"k8s.ns.name":"a",'
        '"k8s.pod.name":"api-0"}}\n'
        "not json at all\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "monitor", "--source", "-", "--until-eof",
         "--format", "json", "--store", str(tmp_path / "s.db"),
         "--dead-letter", str(tmp_path / "dl.jsonl")],
        input=sample.encode(), capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["events_read"], summary["events_stored"], summary["malformed"]) == (2, 1, 1)
    assert b"malformed alert at stdin:2" in done.stderr
    (dead,) = read_dead_letter(tmp_path / "dl.jsonl")
    assert dead.origin == "stdin:2"
    assert dead.data.strip() == b"not json at all"


@pytest.mark.parametrize(
    ("scan_cluster", "monitor_cluster", "applies"),
    [([], [], True), (["--store-cluster", "prod"], ["--cluster", "prod"], True),
     ([], ["--cluster", "prod"], False), (["--store-cluster", "prod"], [], False)],
)  # fmt: skip
def test_monitor_uses_the_last_scan_saved_in_the_store_for_its_cluster(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scan_cluster: list[str],
    monitor_cluster: list[str],
    applies: bool,
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  template:\n    spec:\n      containers:\n        - name: web\n"
        "          image: nginx:1.25\n          securityContext: {privileged: true}\n"
    )
    store = tmp_path / "ks.db"
    assert main(["scan", "--path", str(manifest), "--store", str(store), "-q",
                 *scan_cluster]) == 1  # fmt: skip
    alert_line = (
        '{"output":"x","priority":"Warning","rule":"Terminal shell in container",'
        '"time":"2026-01-01T00:00:00.000000000Z","output_fields":{"k8s.ns.name":"shop",'
        '"k8s.pod.name":"web-6d4cf56db6-x7k2p"}}\n'
    )
    stream = tmp_path / "falco.jsonl"
    stream.write_text(alert_line)
    capsys.readouterr()
    assert main(["monitor", "--source", str(stream), "--until-eof", "--store", str(store),
                 "--no-k8s-lookup", "--dead-letter", str(tmp_path / "dl.jsonl"),
                 *monitor_cluster]) == 0  # fmt: skip
    notice = "the stored posture describes cluster"
    assert (notice in capsys.readouterr().err) is not applies
    from kubesentinel.runtime.store.sqlite import SQLiteStore

    reader = SQLiteStore(store)
    try:
        (incident,) = reader.list_incidents()
    finally:
        reader.close()
    assert ("KS-0001" in incident.posture) is applies
    assert any("posture" in r.reason for r in incident.reasons) is applies
