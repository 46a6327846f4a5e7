"""A store on a really full disk: a tmpfs of 2 MiB mounted for the test.

The monitor must stop acknowledging (alerts settled as not stored, a live source told to answer
503), say so in one line, keep everything acknowledged, recover when space comes back, and
leave a store that `incidents list` still reads. Mounting needs root (CI runs as root); the
tests skip elsewhere with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.runtime import pipeline
from kubesentinel.runtime.correlate import Correlator
from kubesentinel.runtime.deadletter import DeadLetter
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.metrics import Metrics
from kubesentinel.runtime.sources.interface import Outcome, RawAlert
from kubesentinel.runtime.store.sqlite import SQLiteStore

pytestmark = pytest.mark.integration

BASE_NS = 1_767_225_600_000_000_000


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write until the file system refuses: the disk is full."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def alert_line(n: int, pod: str = "web-6d4cf56db6-x7k2p") -> bytes:
    # Distinct command lines: evidence that does not compress away.
    body = {
        "hostname": "node-1",
        "output": f"shell {n}",
        "output_fields": {
            "evt.time": BASE_NS + n * 1_000_000,
            "k8s.ns.name": "shop",
            "k8s.pod.name": pod,
            "proc.cmdline": f"bash -c {os.urandom(24).hex()}",
        },
        "priority": "Warning",
        "rule": "Terminal shell in container",
        "source": "syscall",
        "tags": ["mitre_execution"],
    }
    return json.dumps(body).encode()


def run_pipeline(
    source: ScriptedLiveSource, store: SQLiteStore, dead_letter: DeadLetter, **options: Any
) -> pipeline.Summary:
    return pipeline.run(
        source,
        enricher=Enricher(cluster="test"),
        correlator=Correlator(),
        store=store,
        metrics=Metrics(),
        dead_letter=dead_letter,
        **options,
    )


class ScriptedLiveSource:
    """A live source whose batches run a step (fill the disk, free it) before they are read."""

    name = "scripted"
    live = True

    def __init__(self, script: list[tuple[Callable[[], None] | None, int]]) -> None:
        self._script = script
        self.outcomes: dict[str, Outcome] = {}
        self.marks: list[str | None] = []
        self._n = 0

    def set_unavailable(self, reason: str | None) -> None:
        self.marks.append(reason)

    def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
        for step, size in self._script:
            if step is not None:
                step()
            batch = []
            for _ in range(size):
                self._n += 1
                origin = f"scripted:{self._n}"
                settle = partial(self._settle, origin)
                batch.append(RawAlert(alert_line(self._n), origin, BASE_NS, settle))
            yield batch

    def _settle(self, origin: str, outcome: Outcome = Outcome.STORED, reason: str = "") -> None:
        assert origin not in self.outcomes, "settled twice"
        self.outcomes[origin] = outcome

    def close(self) -> None:
        pass

    def by_outcome(self, outcome: Outcome) -> list[str]:
        return [origin for origin, got in self.outcomes.items() if got is outcome]


@pytest.mark.parametrize("store_process", [False, True], ids=["inline", "writer-process"])
def test_a_full_disk_stops_acknowledging_and_recovers(tiny_fs: Path, store_process: bool) -> None:
    store = SQLiteStore(tiny_fs / "ks.db")
    filler: list[Path] = []

    def fill_once_settled(count: int) -> None:
        wait_for(lambda: len(source.outcomes) == count)  # the writer may commit later
        filler.append(fill(tiny_fs))

    def free_once_settled(count: int) -> None:
        wait_for(lambda: len(source.outcomes) == count)
        filler[0].unlink()

    source = ScriptedLiveSource(
        [
            (None, 50),  # stored
            (partial(fill_once_settled, 50), 400),  # the disk is full: not stored
            (None, 400),  # tried again (retry_s=0)
            (partial(free_once_settled, 850), 50),  # space again: stored
            (None, 50),  # stored, the breaker closed
        ]
    )
    try:
        summary = run_pipeline(
            source,
            store,
            DeadLetter(tiny_fs / "dl.jsonl"),
            store_process=store_process,
            store_retry_s=0.0,
        )
    finally:
        store.close()
    stored = source.by_outcome(Outcome.STORED)
    not_stored = source.by_outcome(Outcome.UNAVAILABLE)
    assert len(source.outcomes) == 950  # every alert settled exactly once
    assert stored[:50] == [f"scripted:{n}" for n in range(1, 51)]
    assert stored[-50:] == [f"scripted:{n}" for n in range(901, 951)]
    assert {f"scripted:{n}" for n in range(51, 451)} <= set(not_stored)  # hit the full disk
    assert summary.unavailable == len(not_stored)
    assert source.marks[0] == pipeline.UNAVAILABLE_REASON  # a live source answers 503
    assert source.marks[-1] is None  # and accepts again once the store took a write
    with SQLiteStore(tiny_fs / "ks.db", read_only=True) as reader:
        [incident] = reader.list_incidents()
        stored_ids = {e.origin for e in reader.events_of(incident.id)}
    assert stored_ids == set(stored)  # acknowledged means stored, and nothing else claimed


def test_a_replay_onto_a_full_disk_ends_in_one_line_and_a_readable_store(
    tiny_fs: Path, tmp_path: Path
) -> None:
    stream = tmp_path / "alerts.jsonl"
    stream.write_bytes(b"\n".join(alert_line(n, pod=f"web-{n % 7}") for n in range(20000)))
    store = tiny_fs / "ks.db"
    done = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "monitor", "--source", str(stream),
         "--until-eof", "--store", str(store), "--dead-letter", str(tiny_fs / "dl.jsonl"),
         "--workers", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert "database or disk is full" in errors[0]
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    listing = subprocess.run(
        [sys.executable, "-m", "kubesentinel", "incidents", "list", "--store", str(store),
         "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    assert "Traceback" not in listing.stderr
    assert json.loads(listing.stdout)  # what was committed before the disk filled is there


def test_a_dead_letter_file_that_cannot_be_written_refuses_the_batch(tmp_path: Path) -> None:
    """A malformed alert can be answered 400 only once it is dead-lettered: when that write
    fails (ENOSPC on /dev/full), its whole batch is settled as not stored and the source is
    told to answer 503; no alert is left without an answer."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to fail a write with ENOSPC")

    class Poisoned(ScriptedLiveSource):
        def batches(self, max_batch: int) -> Iterator[list[RawAlert]]:
            for batch in super().batches(max_batch):
                yield [*batch, RawAlert(b"{not json", "scripted:bad", BASE_NS, self._bad)]

        def _bad(self, outcome: Outcome = Outcome.STORED, reason: str = "") -> None:
            self.outcomes["scripted:bad"] = outcome

    source = Poisoned([(None, 5)])
    store = SQLiteStore(tmp_path / "ks.db")
    try:
        summary = run_pipeline(source, store, DeadLetter(Path("/dev/full")))
    finally:
        store.close()
    assert set(source.outcomes.values()) == {Outcome.UNAVAILABLE}
    assert len(source.outcomes) == 6
    assert summary.unavailable == 6
    assert source.marks == [pipeline.UNAVAILABLE_REASON]
