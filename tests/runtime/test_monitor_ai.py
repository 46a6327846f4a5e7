"""The monitor with the behavioural analyzer, end to end through the CLI.

A simulated cluster's Falco stream, plus behaviour telemetry (the rules of
deploy/falco/kubesentinel-telemetry.yaml, INFO and tagged ``telemetry``) for one of its
workloads: a model is trained on the normal period, then the monitor replays the rest, in which
that workload starts a miner and talks to an external pool, seen only by telemetry (no Falco
rule names it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.ai.modelfile import load_analyzer
from kubesentinel.cli import main
from kubesentinel.runtime.simulate import simulate
from tests.ai.helpers import events_of

NS = 1_000_000_000
TELEMETRY_PERIOD_S = 20
ATTACK_RULES = {"KubeSentinel Process Spawned", "KubeSentinel Outbound Connection"}
SPAWN = "KubeSentinel Process Spawned"
# A workload beside the simulated ones that only telemetry reports: no Falco rule fires on it,
# so any incident it has comes from the analyzer.
TARGET = "sim/shop/Deployment/recommender"
POD = {
    "k8s.ns.name": "shop", "k8s.pod.name": "recommender-7c9d8f6b5d-k2m4x",
    "container.id": "5f0c2a9e7b31", "container.image.repository":
    "registry.example.com/shop/recommender", "container.image.tag": "3.1.0",
}  # fmt: skip
CONNECT = "KubeSentinel Outbound Connection"


@dataclass(frozen=True)
class Replay:
    dir: Path
    model: Path
    stream: Path  # what the monitor replays: the stream after the training window
    store: Path
    saved: Path  # the model as the monitor left it (--save-model)
    summary: dict[str, Any]
    workload: str  # cluster/namespace/Kind/name of the attacked workload
    attack_ns: int
    attack_lines: list[str]


def _stamp(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, NS)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _telemetry(rule: str, time_ns: int, pod: dict[str, Any], fields: dict[str, Any]) -> str:
    """A telemetry alert as Falco prints it for our rules file, from a pod of the stream."""
    output_fields = {**pod, "evt.type": "execve", "user.name": "app", **fields}
    return json.dumps({
        "hostname": "ip-10-0-1-21", "output": f"KubeSentinel telemetry: {rule}",
        "output_fields": output_fields, "priority": "Informational", "rule": rule,
        "source": "syscall", "tags": ["telemetry", "kubesentinel", "container"],
        "time": _stamp(time_ns),
    })  # fmt: skip


def _normal(time_ns: int, pod: dict[str, Any], n: int) -> list[str]:
    """What the workload does every TELEMETRY_PERIOD_S: a worker spawned, a database call."""
    worker = {"proc.name": "python3", "proc.pname": "gunicorn", "proc.exepath": "/usr/bin/python3"}
    return [
        _telemetry(SPAWN, time_ns, pod, worker),
        _telemetry(CONNECT, time_ns + NS // 2, pod, {**worker, "evt.type": "connect",
                   "fd.name": f"10.244.1.9:{40000 + n % 20000}->10.96.12.7:5432"}),
    ]  # fmt: skip


def _attack(time_ns: int, pod: dict[str, Any]) -> list[str]:
    """A shell drops a miner, which keeps reconnecting to an external pool."""
    lines = [_telemetry(SPAWN, time_ns, pod, {"proc.name": "sh", "proc.pname": "python3",
                        "proc.exepath": "/bin/sh"})]  # fmt: skip
    miner = {"proc.name": "xmrig", "proc.pname": "sh", "proc.exepath": "/tmp/xmrig"}
    for n in range(5):
        t = time_ns + (n * 30 + 5) * NS
        lines.append(_telemetry(SPAWN, t, pod, miner))
        lines.append(_telemetry(CONNECT, t + NS, pod, {**miner, "evt.type": "connect",
                     "fd.name": "10.244.1.9:41000->45.9.20.1:3333"}))  # fmt: skip
    return lines


def _time_ns(line: str) -> int:
    return events_of([line])[0].time_ns


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    out = tmp_path_factory.mktemp("ai-monitor")
    sim = simulate(seed=1, hours=3.0)
    lines = list(sim.lines())
    first_attack = min(label.start_ns for label in sim.labels)
    train_end = first_attack - 60 * NS
    attack_ns = sim.end_ns - 40 * 60 * NS
    telemetry = [
        line
        for n, t in enumerate(range(sim.start_ns, sim.end_ns, TELEMETRY_PERIOD_S * NS))
        for line in _normal(t, POD, n)
    ]
    attack = _attack(attack_ns, POD)
    everything = sorted(
        ((_time_ns(line), line) for line in (*lines, *telemetry, *attack)), key=lambda p: p[0]
    )
    train = out / "train.jsonl"
    train.write_text("".join(line + "\n" for t, line in everything if t < train_end))
    stream = out / "stream.jsonl"
    stream.write_text("".join(line + "\n" for t, line in everything if t >= train_end))
    model = out / "model.json.zst"
    assert main(["ai", "train", "--events", str(train), "--model", str(model),
                 "--cluster", "sim"]) == 0  # fmt: skip
    store, saved = out / "ks.db", out / "after.json.zst"
    summary_file = out / "summary.json"
    code = _monitor(stream, store, "--model", str(model), "--save-model", str(saved),
                    summary=summary_file)  # fmt: skip
    assert code == 0
    return Replay(
        out, model, stream, store, saved, json.loads(summary_file.read_text()),
        TARGET, attack_ns, attack,
    )  # fmt: skip


def _monitor(stream: Path, store: Path, *extra: str, summary: Path | None = None) -> int:
    args = ["monitor", "--source", str(stream), "--until-eof", "--format", "json",
            "--store", str(store), "--cluster", "sim", "--workers", "1",
            "--dead-letter", str(store.parent / "dead.jsonl"), *extra]  # fmt: skip
    if summary is None:
        return main(args)
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(args)
    summary.write_text(buffer.getvalue())
    return code


def _incidents(store: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["incidents", "list", "--store", str(store), "--format", "json",
                 "--limit", "0"]) == 0  # fmt: skip
    incidents: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return incidents


def _with_telemetry_signals(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in incidents if {r["rule"] for r in i["rules"]} & ATTACK_RULES]


def test_every_event_is_scored_and_the_attack_is_anomalous(replay: Replay) -> None:
    summary = replay.summary
    # Every workload event; Falco's own health alerts are metrics, never scored.
    workload_events = summary["events_read"] - summary["internal"] - summary["malformed"]
    assert summary["events_scored"] == workload_events > 10_000
    assert summary["anomalies"] >= len(replay.attack_lines) - 1


def test_a_telemetry_only_attack_opens_an_incident_naming_the_anomaly(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _with_telemetry_signals(_incidents(replay.store, capsys))
    # Normal telemetry (a spawn and a connection every 20 s for hours) opened no incident.
    assert [i["workload"]["key"] for i in found] == [replay.workload]
    incident = found[0]
    assert replay.attack_ns <= incident["first_ns"] < replay.attack_ns + 10 * NS
    reasons = [r["reason"] for r in incident["reasons"]]
    assert any(r.startswith("anomaly 1.00: process xmrig never seen in ") for r in reasons), reasons
    assert incident["severity"] in ("medium", "high", "critical")
    assert incident["anomaly_count"] >= 10
    assert all(a["score"] >= 0.75 for a in incident["anomalies"])


def test_incidents_show_gives_each_anomalous_event_its_score_and_reason(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    incident = _with_telemetry_signals(_incidents(replay.store, capsys))[0]
    capsys.readouterr()
    assert main(["incidents", "show", incident["id"], "--store", str(replay.store),
                 "--format", "json", "--all"]) == 0  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert document["integrity"]["ok"]  # the anomalies are sealed with the incident
    miner = [e for e in document["events"] if e["process"] == "xmrig"]
    assert len(miner) == 10
    for event in miner:
        assert event["anomaly"]["score"] >= 0.75
        assert event["anomaly"]["reason"]
    assert any("xmrig" in e["anomaly"]["reason"] for e in miner)
    assert main(["incidents", "show", incident["id"], "--store", str(replay.store)]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("TIME"))
    assert header.rstrip().endswith("ANOMALY")
    rows = [line for line in table.splitlines() if line.startswith("2026-") and "xmrig" in line]
    assert rows
    for row in rows:
        cell = row.split("segment")[-1].split("  ", 1)[1].lstrip()  # after EVIDENCE: ANOMALY
        assert re.match(r"(0\.(7[5-9]|[89]\d)|1\.00) process xmrig never seen in ", cell), row


def test_the_monitor_learns_no_anomaly(replay: Replay) -> None:
    """The poisoning guard inside the monitor: the model it saved after the run has learned
    nothing of the attack, not even its shell spawn, which scores below the threshold but
    fell inside the incident; the same model made to learn the attack would shrug it off."""
    attack = events_of(replay.attack_lines, "sim")
    name = replay.workload.split("/", 1)[1]
    after = load_analyzer(replay.saved, threshold=0.75)
    after.learning = False
    scores = after.score_batch(attack)
    assert scores[0].reasons[0].startswith("executable /bin/sh of sh never seen in ")
    for scored in scores[1:]:
        assert scored.reasons[0].startswith("process xmrig never seen in "), scored.reasons
        assert name in scored.reasons[0]
    assert max(s.score for s in scores[1:]) >= 0.75
    control = load_analyzer(replay.saved, threshold=0.75)
    control.learn(attack)
    control.learning = False
    assert max(s.score for s in control.score_batch(attack)) < 0.75


def test_without_a_model_scoring_is_off_and_telemetry_stays_context(
    replay: Replay, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # the config's default model path (a .pkl) does not apply here
    capsys.readouterr()
    store = tmp_path / "off.db"
    assert _monitor(replay.stream, store) == 0
    captured = capsys.readouterr()
    assert captured.err.count("anomaly scoring off") == 1
    assert "pickle" in captured.err
    summary = json.loads(captured.out)
    assert (summary["events_scored"], summary["anomalies"]) == (0, 0)
    assert _with_telemetry_signals(_incidents(store, capsys)) == []


def test_no_ai_turns_scoring_off(replay: Replay, tmp_path: Path, capsys: Any) -> None:
    capsys.readouterr()
    assert _monitor(replay.stream, tmp_path / "s.db", "--no-ai") == 0
    captured = capsys.readouterr()
    assert "anomaly scoring off (--no-ai)" in captured.err
    assert json.loads(captured.out)["events_scored"] == 0


@pytest.mark.parametrize(
    ("content", "name", "says"),
    [
        (b"not json at all", "model.json", "is not JSON"),
        (b'{"format": "kubesentinel-ai-model", "schema_version": 2, "sha256": "00", '
         b'"model": {}}', "model.json", "does not match its sha256 digest"),
        (b"\x80\x04K\x01.", "model.pkl", "a pickle runs code"),
    ],
)  # fmt: skip
def test_a_bad_model_given_is_exit_2_before_anything_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, name: str, says: str
) -> None:
    model = tmp_path / name
    model.write_bytes(content)
    store = tmp_path / "never.db"
    assert _monitor(tmp_path / "no-such-stream.jsonl", store, "--model", str(model)) == 2
    err = capsys.readouterr().err
    assert "KS-E061" in err
    assert str(model) in err
    assert says in err
    assert not store.exists()


def test_a_damaged_model_in_the_config_is_exit_2(tmp_path: Path, capsys: Any) -> None:
    model = tmp_path / "model.json.zst"
    model.write_bytes(b"\x28\xb5\x2f\xfd garbage")
    config = tmp_path / "config.yaml"
    config.write_text(f"ai:\n  model_path: {model}\n")
    code = main(["--config", str(config), "monitor", "--source", str(tmp_path / "x.jsonl"),
                 "--until-eof", "--store", str(tmp_path / "s.db")])  # fmt: skip
    assert code == 2
    assert "is damaged" in capsys.readouterr().err


def test_no_ai_with_a_model_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    code = _monitor(tmp_path / "x.jsonl", tmp_path / "s.db", "--no-ai", "--model", "m.json")
    assert code == 2
    assert "--no-ai contradicts" in capsys.readouterr().err


def test_the_summary_counts_what_the_guard_kept_from_learning(replay: Replay) -> None:
    summary = replay.summary
    assert summary["events_learned"] > 0
    assert summary["events_held"] > 0  # the attack's incident held its workload
    assert summary["events_learned"] + summary["events_held"] <= summary["events_scored"]


@pytest.mark.integration
def test_through_the_service_the_same_incidents_and_the_same_holds(
    replay: Replay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ai.endpoint: the served analyzer is held and settled as the one in process, so the
    monitor finds the same incidents and the service learns exactly what it would have."""
    pytest.importorskip("grpc", reason="the ai-serve extra (grpcio) runs the service")
    from tests.ai.served import serve

    running = serve(replay.model)
    try:
        config = tmp_path / "config.yaml"
        config.write_text(f'ai:\n  endpoint: "127.0.0.1:{running.port}"\n')
        store = tmp_path / "remote.db"
        summary_file = tmp_path / "summary.json"
        code = _monitor(replay.stream, store, "--config", str(config), summary=summary_file)
        assert code == 0
    finally:
        running.stop(0)
    summary = json.loads(summary_file.read_text())
    for key in ("events_scored", "anomalies", "events_learned", "events_held"):
        assert summary[key] == replay.summary[key], key
    assert _incidents(store, capsys) == _incidents(replay.store, capsys)
