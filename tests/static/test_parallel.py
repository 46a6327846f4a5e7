"""Large scans parse in worker processes; the result must equal the serial scan exactly."""

from __future__ import annotations

import gc
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from kubesentinel.static import parallel
from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths
from kubesentinel.static.parallel import (
    PARALLEL_MIN_BYTES,
    PARALLEL_MIN_OBJECTS,
    fork_map,
    gc_paused,
    stripes,
)

POD = """apiVersion: v1
kind: Pod
metadata:
  name: pod-{i}
  namespace: ns-{n}
  annotations:
    padding: "{pad}"
spec:
  hostPID: {host_pid}
  containers:
    - name: c
      image: nginx:1.25
      securityContext: {{privileged: {priv}}}
---
apiVersion: example.com/v1
kind: Widget
metadata: {{name: w-{i}}}
spec: {{size: {i}}}
"""


def test_parallel_scan_equals_serial_scan(tmp_path: Path) -> None:
    pad = "x" * 4000
    for n in range(40):
        docs = [
            POD.format(
                i=i, n=n, pad=pad, host_pid=str(i % 3 == 0).lower(), priv=str(i % 2 == 0).lower()
            )
            for i in range(20)
        ]
        (tmp_path / f"f{n:02}.yaml").write_text("---\n".join(docs))
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) > PARALLEL_MIN_BYTES

    catalogue = builtin_catalogue()
    serial = scan_paths([str(tmp_path)], catalogue, ScanOptions(workers=1))
    parallel = scan_paths([str(tmp_path)], catalogue, ScanOptions(workers=2))
    assert serial.objects == parallel.objects == 40 * 20 * 2
    assert serial.findings == parallel.findings
    assert [str(e) for e in serial.errors] == [str(e) for e in parallel.errors]
    assert len(serial.errors) == 1
    assert serial.files == parallel.files
    assert len(serial.notices) == len(parallel.notices) == 40 * 20  # one per Widget


def test_duplicate_paths_dedup_the_same_in_parallel(tmp_path: Path) -> None:
    """The same file named twice yields each finding once, whichever worker saw each copy."""
    for n in range(30):
        docs = [POD.format(i=i, n=n, pad="", host_pid="true", priv="true") for i in range(10)]
        (tmp_path / f"f{n:02}.yaml").write_text("---\n".join(docs))
    # An odd object count per copy puts the two copies of each object in different stripes.
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    catalogue = builtin_catalogue()
    paths = [str(tmp_path), str(tmp_path)]
    serial = scan_paths(paths, catalogue, ScanOptions(workers=1))
    parallel = scan_paths(paths, catalogue, ScanOptions(workers=2))
    assert serial.objects == 2 * (30 * 10 * 2 + 1) >= PARALLEL_MIN_OBJECTS
    assert serial.findings == parallel.findings
    once = scan_paths([str(tmp_path)], catalogue, ScanOptions(workers=1))
    assert serial.findings == once.findings


def test_fork_map_runs_tasks_in_order_here_and_in_forked_helpers() -> None:
    parent = os.getpid()
    data = list(range(1000))  # inherited by the forked helpers, never pickled

    def task(index: int) -> tuple[int, int, bool]:
        time.sleep(0.02)  # long enough that this process and the helper both take some
        return index, sum(data[index::4]), os.getpid() == parent

    results = fork_map(task, 4, workers=2)
    assert [r[:2] for r in results] == [(i, sum(data[i::4])) for i in range(4)]
    assert {r[2] for r in results} == {True, False}  # some here, some in a helper
    assert fork_map(task, 3, workers=1) == [task(0), task(1), task(2)]


def test_stripes_deal_every_index_once() -> None:
    parts = stripes(10, 3)
    assert [list(p) for p in parts] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(i for p in stripes(1001, 4) for i in p) == list(range(1001))
    assert stripes(2, 8) == [range(0, 2, 2), range(1, 2, 2)]
    assert stripes(0, 2) == [range(0, 0, 1)]


def test_gc_paused_restores_the_collector() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_a_helper_that_dies_costs_its_batch_an_error_and_the_rest_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash in C code (libyaml, yaml_rs) kills the helper reading a batch: that batch's
    files are KS-E010 errors naming them, and every other file is scanned as usual."""
    pad = "x" * 4000
    for n in range(40):
        docs = [POD.format(i=i, n=n, pad=pad, host_pid="true", priv="false") for i in range(20)]
        (tmp_path / f"f{n:02}.yaml").write_text("---\n".join(docs))
    big = [POD.format(i=i, n=99, pad="y" * 40_000, host_pid="true", priv="true") for i in range(5)]
    (tmp_path / "big.yaml").write_text("---\n".join(big))  # the largest: a helper takes it first
    catalogue = builtin_catalogue()
    serial = scan_paths([str(tmp_path)], catalogue, ScanOptions(workers=1))
    parent, poisoned = os.getpid(), str(tmp_path / "big.yaml")
    real_read = parallel._read

    def read(sources: Any, *args: Any) -> Any:
        if os.getpid() != parent and any(s.name == poisoned for s in sources):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_read(sources, *args)

    monkeypatch.setattr(parallel, "_read", read)
    crashed = scan_paths([str(tmp_path)], catalogue, ScanOptions(workers=2))
    lost = {e.file for e in crashed.errors}
    assert poisoned in lost
    assert all(e.code == "KS-E010" and "killed by signal 9" in e.message for e in crashed.errors)
    assert crashed.files == serial.files  # every file is accounted for
    assert [f for f in serial.findings if f.file not in lost] == crashed.findings
    assert lost == {poisoned}  # its batch holds it alone: 200 KB, more than a batch
    assert crashed.objects == serial.objects - 5 * 2
    assert crashed.errors[0].hint is None  # alone in its batch: no other file to suspect
    assert crashed.errors[0].message.endswith("(killed by signal 9) while reading this file")
