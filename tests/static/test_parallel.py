"""Large scans parse in worker processes; the result must equal the serial scan exactly."""

from __future__ import annotations

from pathlib import Path

from kubesentinel.static.catalogue import builtin_catalogue
from kubesentinel.static.engine import ScanOptions, scan_paths
from kubesentinel.static.parallel import PARALLEL_MIN_BYTES

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
