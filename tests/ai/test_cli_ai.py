"""`kubesentinel ai train` and `ai score`: exit codes, output order and fields, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubesentinel.cli import main
from tests.ai.helpers import alert
from tests.ai.synthetic import API, NGINX, T0, training

NS = 1_000_000_000


def _write_training(path: Path) -> None:
    lines = [e.raw.decode() for e in training()]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    events = tmp_path / "train.jsonl"
    _write_training(events)
    path = tmp_path / "model.json.zst"
    assert main(["ai", "train", "--events", str(events), "--model", str(path)]) == 0
    return path


def test_train_then_score_in_input_order(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = T0 + 4000 * NS
    lines = [
        alert(t + 5 * NS, API, {"proc.name": "xmrig", "proc.pname": "sh"}, uuid="u-1"),
        alert(t, API, NGINX),  # earlier in time, later in the file: output keeps file order
        "",
        alert(t + 9 * NS, API, NGINX | {"proc.name": "nginx"}),
    ]
    events = tmp_path / "score.jsonl"
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.jsonl"
    code = main(
        ["ai", "score", "--events", str(events), "--model", str(model), "--output", str(out)]
    )
    assert code == 0
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2]
    assert records[0]["uuid"] == "u-1"
    assert "uuid" not in records[1]
    assert records[0]["anomalous"] is True
    assert records[0]["score"] >= 0.75
    assert records[0]["workload"] == "default/shop/Deployment/api"
    assert records[0]["reasons"][0].startswith("process xmrig never seen in")
    assert records[1]["anomalous"] is False
    assert records[1]["reasons"] == []
    assert records[2]["origin"].endswith("score.jsonl:4")
    assert "3 events, 1 anomalous" in capsys.readouterr().err


def test_malformed_lines_are_reported_and_skipped(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "mixed.jsonl"
    events.write_text("\n".join([alert(T0 + 4000 * NS, API, NGINX), "{not json", '{"rule": "x"}',
                                 alert(T0 + 4001 * NS, API, NGINX)]) + "\n")  # fmt: skip
    out = tmp_path / "scores.jsonl"
    code = main(
        ["ai", "score", "--events", str(events), "--model", str(model), "--output", str(out)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"{events}:2: not JSON" in err
    assert f"{events}:3: missing priority" in err
    assert "2 malformed lines skipped" in err
    assert len(out.read_text().splitlines()) == 2


def test_pickle_model_path_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "train.jsonl"
    _write_training(events)
    code = main(["ai", "train", "--events", str(events), "--model", str(tmp_path / "m.pkl")])
    assert code == 2
    assert "KS-E061" in capsys.readouterr().err
    assert not (tmp_path / "m.pkl").exists()


def test_default_model_path_from_config_is_refused_as_a_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "e.jsonl"
    _write_training(events)
    assert main(["ai", "score", "--events", str(events)]) == 2
    assert "baseline.pkl" in capsys.readouterr().err


def test_config_model_path_and_threshold_are_read(tmp_path: Path) -> None:
    events = tmp_path / "train.jsonl"
    _write_training(events)
    config = tmp_path / "config.yaml"
    config.write_text(f"ai:\n  model_path: {tmp_path / 'm.json'}\n  threshold: 0.0\n")
    assert main(["--config", str(config), "ai", "train", "--events", str(events)]) == 0
    out = tmp_path / "s.jsonl"
    code = main(
        ["--config", str(config), "ai", "score", "--events", str(events), "--output", str(out)]
    )
    assert code == 0
    assert all(json.loads(x)["anomalous"] for x in out.read_text().splitlines())  # t = 0


@pytest.mark.parametrize(
    "args",
    [
        ["ai", "train", "--events", "/nonexistent/x.jsonl", "--model", "m.json"],
        ["ai", "train", "--events", "EVENTS", "--model", "m.json", "--window", "yesterday"],
        [
            "ai",
            "train",
            "--events",
            "EVENTS",
            "--model",
            "m.json",
            "--window",
            "2099-01-01T00:00:00Z/",
        ],
        ["ai", "score", "--events", "EVENTS", "--model", "MODEL", "--threshold", "2"],
        ["ai", "score", "--events", "EVENTS", "--model", "/nonexistent/m.json"],
    ],
)
def test_usage_and_input_errors_exit_2(args: list[str], model: Path, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    _write_training(events)
    args = [a.replace("EVENTS", str(events)).replace("MODEL", str(model)) for a in args]
    args = [str(tmp_path / a) if a == "m.json" else a for a in args]
    assert main(args) == 2


def test_window_limits_what_is_learned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "train.jsonl"
    _write_training(events)
    model = tmp_path / "m.json"
    assert (
        main(["ai", "train", "--events", str(events), "--model", str(model), "--window", "30m"])
        == 0
    )
    err = capsys.readouterr().err
    assert "learned 1801 events" in err
    assert "(1799 outside the window)" in err
