"""Static-scan benchmark: throughput and peak memory on the real corpus, and start-up time.

Every figure is a whole ``python -m kubesentinel scan`` process, as a user runs it:
(a) the shared corpus (shared/corpus/real) scanned at every severity to /dev/null, median wall
time of --repeat runs, objects/s from ``summary.objects`` of one extra run that writes its JSON
to a temp file, and the child's own peak RSS (os.wait4 returns the rusage of that one child);
(b) start-up: median wall time of 5 scans of a one-object manifest.

Output is one ``name: number`` per line with the target beside it. The exit status is 0 unless a
scan could not run (a missed target is reported, not failed); without the corpus, (a) is skipped.

Usage: python bench/static_bench.py [--corpus DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_OBJECTS_PER_S = 1000.0
TARGET_STARTUP_S = 0.5
DESIGN_BASELINE_MB = 50.0
STARTUP_RUNS = 5
# Exit 0 (clean) and 1 (findings) both mean the scan ran; anything else is a failure to run.
SCAN_RAN = (0, 1)

TINY_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
"""


class BenchError(Exception):
    """A scan process that did not run to completion."""


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float
    peak_rss_mb: float
    exit_code: int


def default_corpus() -> Path:
    shared = Path(os.environ.get("KUBESENTINEL_SHARED", ROOT.parent / "shared"))
    return shared / "corpus" / "real"


def scan_command(path: Path, output: str, threshold: str = "low") -> list[str]:
    return [
        sys.executable,
        "-m",
        "kubesentinel",
        "scan",
        "--path",
        str(path),
        "--format",
        "json",
        "--output",
        output,
        "--severity-threshold",
        threshold,
    ]


def run(command: Sequence[str]) -> Run:
    """Run one process; wall time and that child's peak RSS (Linux reports ru_maxrss in KiB)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in SCAN_RAN:
            errors.seek(0)
            tail = errors.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise BenchError(f"exit {code} from {' '.join(command)}: " + " | ".join(tail))
    return Run(wall, usage.ru_maxrss / 1024, code)


def count_objects(corpus: Path) -> tuple[int, int]:
    """(objects, files) from the JSON summary of one scan written to a temp file."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "scan.json"
        run(scan_command(corpus, str(report)))
        summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
    return int(summary["objects"]), int(summary["files"])


def throughput(corpus: Path, repeat: int) -> list[str]:
    objects, files = count_objects(corpus)  # also warms the page cache for the timed runs
    runs = [run(scan_command(corpus, os.devnull)) for _ in range(repeat)]
    wall = statistics.median(r.wall_s for r in runs)
    rate = objects / wall
    peak = max(r.peak_rss_mb for r in runs)
    return [
        f"static.corpus: {corpus}",
        f"static.files: {files}",
        f"static.objects: {objects}",
        f"static.wall_s: {wall:.3f}  # median of {repeat}, min {min(r.wall_s for r in runs):.3f}",
        f"static.objects_per_s: {rate:.1f}  # target >= {TARGET_OBJECTS_PER_S:.0f}: "
        + ("met" if rate >= TARGET_OBJECTS_PER_S else "MISSED"),
        f"static.peak_rss_mb: {peak:.1f}  # design baseline ~{DESIGN_BASELINE_MB:.0f} MB",
    ]


def startup() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "deployment.yaml"
        manifest.write_text(TINY_MANIFEST, encoding="utf-8")
        runs = [run(scan_command(manifest, os.devnull)) for _ in range(STARTUP_RUNS)]
    median = statistics.median(r.wall_s for r in runs)
    return [
        f"static.startup_s: {median:.3f}  # median of {STARTUP_RUNS}, target < "
        f"{TARGET_STARTUP_S}: " + ("met" if median < TARGET_STARTUP_S else "MISSED"),
        f"static.startup_peak_rss_mb: {max(r.peak_rss_mb for r in runs):.1f}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Static-scan throughput, memory and start-up.")
    parser.add_argument("--corpus", type=Path, default=None, help="default: shared/corpus/real")
    parser.add_argument("--repeat", type=int, default=3, help="timed corpus runs (median)")
    args = parser.parse_args(argv)
    corpus = args.corpus or default_corpus()
    try:
        if corpus.is_dir():
            _emit(throughput(corpus, max(1, args.repeat)))
        else:
            _emit([f"static.corpus: skipped, {corpus} is absent"])
        _emit(startup())
    except (BenchError, OSError, KeyError, ValueError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _emit(lines: Sequence[str]) -> None:
    for line in lines:
        print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
