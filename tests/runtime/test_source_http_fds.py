"""The receiver out of file descriptors (EMFILE): it makes room by closing an idle
connection, and with none to close it rests instead of spinning on the listener. The receiver
runs in a child process whose descriptor limit is lowered, so this process keeps its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.http_client import Client, post_bytes, status, wait_until

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import resource, sys
from kubesentinel.runtime.sources.http import HttpSource
resource.setrlimit(resource.RLIMIT_NOFILE, (48, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
src = HttpSource("127.0.0.1", 0, queue_size=1000, max_connections=1000, idle_s=0.05)
print(src.address[1], flush=True)
for batch in src.batches(100):
    for item in batch:
        if sys.argv[1] == "ack":
            item.ack()
"""


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settled(pid: int) -> bool:
    """True once the process used (almost) no CPU for 0.2 s."""
    before, started = _cpu_s(pid), time.monotonic()
    wait_until(lambda: time.monotonic() - started >= 0.2, seconds=1)
    return _cpu_s(pid) - before < 0.02


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[int, int]]:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to read the receiver's CPU time")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, request.param],
        stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield proc.pid, int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("receiver", ["ack"], indirect=True)
def test_out_of_descriptors_an_idle_connection_makes_room(receiver: tuple[int, int]) -> None:
    _, port = receiver
    silent = [Client(("127.0.0.1", port)) for _ in range(80)]  # more than the child can hold
    good = Client(("127.0.0.1", port))
    good.send(post_bytes(b'{"rule": "x"}'))
    assert status(good.response()) == 200
    for client in silent:
        client.close()


@pytest.mark.parametrize("receiver", ["hold"], indirect=True)
def test_out_of_descriptors_with_nothing_to_close_it_does_not_spin(
    receiver: tuple[int, int],
) -> None:
    pid, port = receiver
    waiting = []
    # Each POST is owed an answer the child never gives, so none of those connections can be
    # closed; newcomers past the limit close each other until the backlog is empty.
    for _ in range(3):
        for _ in range(30):
            client = Client(("127.0.0.1", port))
            client.send(post_bytes(b'{"rule": "x"}'))
            waiting.append(client)
        assert wait_until(lambda: _settled(pid))
    for _ in range(20):  # these stay in the listen backlog: accepting them fails with EMFILE
        waiting.append(Client(("127.0.0.1", port)))
    before, started = _cpu_s(pid), time.monotonic()
    assert wait_until(lambda: time.monotonic() - started >= 1.5, seconds=3)
    busy = (_cpu_s(pid) - before) / (time.monotonic() - started)
    assert busy < 0.3, f"the receiver used {busy:.0%} of a core while out of descriptors"
    for client in waiting:
        client.close()
