"""Acknowledged means stored: a real monitor's process group is killed with SIGKILL under load,
restarted on the same store, killed again; every alert a sender saw acknowledged (HTTP 200, a
NATS ack) is in the store afterwards, and a replayed file ends stored exactly once."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.runtime.sources.nats import subject_of
from kubesentinel.runtime.store.rows import id_text
from tests.runtime.test_monitor_nats import _pending, _publish_raw
from tests.runtime.test_source_nats import URL, _run, stream  # noqa: F401

pytestmark = pytest.mark.integration

ROUNDS = 3


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def alert(n: int) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "output": f"A shell was spawned in a container (n={n})",
        "priority": "Warning",
        "rule": "Terminal shell in container",
        # Close in time (a microsecond apart per sender): one busy workload, few incidents.
        "time": f"2026-01-01T00:00:0{n // 1_000_000 % 10}.{n % 1_000_000:06d}000Z",
        "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": f"web-{n % 13}"},
        "source": "syscall",
        "tags": ["container", "mitre_execution"],
        "hostname": "node-1",
    }


def monitor(source: str, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A monitor in a process group of its own (the writer process is killed with it)."""
    command = [sys.executable, "-m", "kubesentinel", "monitor", "--source", source,
               "--store", str(tmp_path / "ks.db"), "--dead-letter", str(tmp_path / "dl.jsonl"),
               "--no-k8s-lookup", "--workers", "2", *extra]  # fmt: skip
    # stderr to a file: a pipe nobody reads would fill up and stall the monitor's logging.
    with (tmp_path / "monitor.log").open("ab") as log:
        return subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def stored_ids(path: Path) -> list[str]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [id_text(row[0]) for row in db.execute("SELECT id FROM events")]
    finally:
        db.close()


def assert_vault_verifies(store: Path) -> None:
    """A store written by monitors killed mid-write is intact: every segment sealed, the
    chain unbroken, every checkpoint valid (SIGKILL may leave the last segments unsigned)."""
    result = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "vault", "verify", "--store", str(store),
         "--format", "json"],
        capture_output=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["problems"] == [], report
    assert report["segments"] > 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sender(threading.Thread):
    """POSTs distinct alerts over one keep-alive connection until the monitor is gone."""

    def __init__(self, port: int, first: int, acked: list[str]) -> None:
        super().__init__(daemon=True)
        self.port, self.n, self.acked = port, first, acked

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while True:
                body = alert(self.n)
                self.n += 1
                conn.request("POST", "/", json.dumps(body), {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.acked.append(body["uuid"])
        except (OSError, http.client.HTTPException):
            return  # the monitor was killed
        finally:
            conn.close()


def test_http_acknowledged_alerts_survive_sigkill(tmp_path: Path) -> None:
    acked: list[str] = []
    for round_no in range(ROUNDS):
        _http_round(tmp_path, round_no, acked)
    stored = set(stored_ids(tmp_path / "ks.db"))
    lost = [a for a in acked if a not in stored]
    assert len(acked) >= ROUNDS * 2000
    assert lost == [], f"{len(lost)} of {len(acked)} acknowledged alerts were not stored"
    assert_vault_verifies(tmp_path / "ks.db")


def _http_round(tmp_path: Path, round_no: int, acked: list[str]) -> None:
    """Start a monitor, load it with 8 senders, kill it once 2,000 more were acknowledged."""
    port = free_port()
    proc = monitor(f"http://127.0.0.1:{port}", tmp_path)
    try:
        wait_for(lambda: _healthy(port, proc))
    except BaseException:
        kill_group(proc)
        raise
    before = len(acked)
    senders = [Sender(port, 1_000_000 * (round_no * 10 + i), acked) for i in range(8)]
    for sender in senders:
        sender.start()
    try:
        wait_for(lambda: len(acked) >= before + 2000)
    finally:
        kill_group(proc)
    for sender in senders:
        sender.join(timeout=30)


def _healthy(port: int, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "the monitor exited"
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def test_a_file_replay_killed_and_rerun_stores_every_line_once(tmp_path: Path) -> None:
    lines = [json.dumps(alert(n)).encode() for n in range(60_000)]
    stream_file = tmp_path / "alerts.jsonl"
    stream_file.write_bytes(b"\n".join(lines) + b"\n")
    store = tmp_path / "ks.db"
    for _ in range(ROUNDS):
        proc = monitor(str(stream_file), tmp_path, "--until-eof")
        try:
            wait_for(lambda: store.exists() and _count_or_zero(store) > 0)
        finally:
            kill_group(proc)
    proc = monitor(str(stream_file), tmp_path, "--until-eof")
    assert proc.wait(timeout=300) == 0, (tmp_path / "monitor.log").read_text()
    ids = stored_ids(store)
    assert len(ids) == len(lines)  # every line, none twice
    assert len(set(ids)) == len(lines)
    assert_vault_verifies(store)


def _count_or_zero(path: Path) -> int:
    try:
        return len(stored_ids(path))
    except sqlite3.Error:
        return 0


def test_nats_messages_survive_sigkill(
    stream: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    uri = f"{URL}/falco.>?stream={stream}&durable=kill&ack_wait=1"
    first = monitor(uri, tmp_path, "--until-eof")  # creates the stream and the consumer
    assert first.wait(timeout=60) == 0, (tmp_path / "monitor.log").read_text()
    alerts = [alert(n) for n in range(20_000)]
    _run(_publish_raw([(subject_of(a["priority"], a["rule"]), json.dumps(a).encode())
                       for a in alerts]))  # fmt: skip
    store = tmp_path / "ks.db"
    for _ in range(ROUNDS):
        proc = monitor(uri, tmp_path)
        seen = _count_or_zero(store)
        try:
            wait_for(lambda seen=seen: _count_or_zero(store) > seen)  # type: ignore[misc]
        finally:
            kill_group(proc)
    # Unsettled messages come back after ack_wait: runs that end when the stream is idle pick
    # them up until everything is stored.
    expected = {a["uuid"] for a in alerts}
    deadline = time.monotonic() + 120
    while set(stored_ids(store)) != expected and time.monotonic() < deadline:
        last = monitor(uri, tmp_path, "--until-eof")
        assert last.wait(timeout=300) == 0, (tmp_path / "monitor.log").read_text()
    assert set(stored_ids(store)) == expected
    assert len(stored_ids(store)) == len(expected)  # none stored twice
    assert _run(_pending(stream, "kill")) == (0, 0)
    assert_vault_verifies(store)
