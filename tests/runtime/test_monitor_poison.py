"""Poison alerts against whole monitor processes: each is dead-lettered byte for byte, and the
monitor stores what comes after it (a file replay) and keeps serving (HTTP)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kubesentinel.runtime.deadletter import read_dead_letter
from tests.runtime.test_monitor_http import ALERT, _free_port, _healthy, _post

pytestmark = pytest.mark.integration

HUGE_INT = json.dumps({**ALERT, "output_fields": {"n": 0}}).replace('"n": 0', '"n": ' + "9" * 5000)
POISONS = [
    HUGE_INT.encode(),  # ValueError from Python's int-string limit, not JSONDecodeError
    json.dumps({**ALERT, "time": "2026-01-01T00:00:00.00000000\u00b2Z"}).encode(),
    json.dumps({**ALERT, "time": None, "output_fields": {"evt.rawtime": "1" * 5000}}).encode(),
    b"[" * 100_000 + b"]" * 100_000,
    b"\x00\xff\xfe binary",
]


def _good(n: int) -> bytes:
    return json.dumps({**ALERT, "output": f"shell {n}", "time": f"2026-01-01T00:00:0{n}Z"}).encode()


def test_a_file_replay_stores_every_alert_after_the_poison_ones(tmp_path: Path) -> None:
    lines = [_good(0), *POISONS[:3], _good(1), POISONS[3], POISONS[4], _good(2)]
    (tmp_path / "alerts.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    dead = tmp_path / "dl.jsonl"
    source = str(tmp_path / "alerts.jsonl")
    proc = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "monitor", "--source", source, "--until-eof",
         "--format", "json", "--store", str(tmp_path / "ks.db"), "--dead-letter", str(dead),
         "--no-k8s-lookup"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    summary = json.loads(proc.stdout)
    assert (summary["events_read"], summary["events_stored"], summary["malformed"]) == (8, 3, 5)
    records = list(read_dead_letter(dead))
    assert [r.data for r in records] == POISONS
    assert [r.origin.rsplit(":", 1)[1] for r in records] == ["2", "3", "4", "6", "7"]
    assert all(r.reason for r in records)


def test_the_http_monitor_survives_a_poison_alert(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    dead = tmp_path / "dl.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubesentinel", "monitor", "--source", url, "--format", "json",
         "--store", str(tmp_path / "ks.db"), "--dead-letter", str(dead), "--no-k8s-lookup"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not _healthy(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Answered once settled: 400 once the poison alert is in the dead-letter file...
        assert _post(url, HUGE_INT.encode()) == 400
        assert [r.data for r in read_dead_letter(dead)] == [HUGE_INT.encode()]
        assert _post(url, _good(1)) == 200  # ...and the monitor goes on: 200 once stored
        assert (_counter(port, "malformed"), _counter(port, "stored")) == (1, 1)
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert json.loads(out)["events_stored"] == 1
    (record,) = read_dead_letter(dead)
    assert record.data == HUGE_INT.encode()
    assert record.reason == "not JSON: an integer of more than 4300 digits"


def _counter(port: int, name: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return -1
    found = re.search(rf"^kubesentinel_{name}_total (\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else 0
