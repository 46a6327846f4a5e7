"""Static-scan benchmark: throughput and peak memory on the real corpus, and start-up time.

Every figure is a whole ``python -m kubesentinel scan`` process, as a user runs it:
(a) the shared corpus (shared/corpus/real) scanned at every severity to /dev/null, median wall
time of --repeat runs, objects/s from ``summary.objects`` of one extra run that writes its JSON
to a temp file, and the child's own peak RSS (os.wait4 returns the rusage of that one child);
(b) start-up: median wall time of 5 scans of a one-object manifest;
(c) Checkov on the same corpus in the same run (``--framework kubernetes``), installed by this
script into its own virtual environment under bench/.cache (or $KUBESENTINEL_BENCH_CACHE), and
the ratio of its wall time to ours. When Checkov cannot be installed (no network), (c) prints a
skip message and the rest still runs.

Output is one ``name: number`` per line with the target beside it. The exit status is 0 unless a
scan could not run (a missed target is reported, not failed); without the corpus, (a) and (c)
are skipped. The machine is noisy: min and median are both printed.

Usage: python bench/static_bench.py [--corpus DIR] [--repeat N] [--no-checkov]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_OBJECTS_PER_S = 5000.0
TARGET_STARTUP_S = 0.3
TARGET_PEAK_RSS_MB = 150.0
TARGET_CHECKOV_RATIO = 50.0
STARTUP_RUNS = 5
CHECKOV_VERSION = "3.3.30"  # pinned so ratios stay comparable between runs
CHECKOV_INSTALL_TIMEOUT_S = 900
# Checkov exits 1 when checks fail; it must not phone home for its guideline mappings.
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
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


def run(
    command: Sequence[str],
    output: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Run:
    """Run one process; wall time and that child's peak RSS (Linux reports ru_maxrss in KiB).
    stdout goes to ``output`` when given, else nowhere."""
    with contextlib.ExitStack() as stack:
        errors = stack.enter_context(tempfile.TemporaryFile())
        out = stack.enter_context(output.open("wb")) if output else subprocess.DEVNULL
        start = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=out, stderr=errors, cwd=ROOT, env=None if env is None else dict(env)
        )
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


@dataclass(frozen=True, slots=True)
class Throughput:
    objects: int
    wall_s: float  # median
    lines: list[str]


def throughput(corpus: Path, repeat: int) -> Throughput:
    objects, files = count_objects(corpus)  # also warms the page cache for the timed runs
    runs = [run(scan_command(corpus, os.devnull)) for _ in range(repeat)]
    wall = statistics.median(r.wall_s for r in runs)
    fastest = min(r.wall_s for r in runs)
    rate = objects / wall
    peak = max(r.peak_rss_mb for r in runs)
    return Throughput(objects, wall, [
        f"static.corpus: {corpus}",
        f"static.files: {files}",
        f"static.objects: {objects}",
        f"static.wall_s: {wall:.3f}  # median of {repeat}, min {fastest:.3f}",
        f"static.objects_per_s: {rate:.1f}  # median; best {objects / fastest:.1f}; target >= "
        f"{TARGET_OBJECTS_PER_S:.0f}: " + _verdict(rate >= TARGET_OBJECTS_PER_S),
        f"static.peak_rss_mb: {peak:.1f}  # max of {repeat}, target <= {TARGET_PEAK_RSS_MB:.0f}: "
        + _verdict(peak <= TARGET_PEAK_RSS_MB),
    ])  # fmt: skip


def checkov(corpus: Path, ours: Throughput, repeat: int) -> list[str]:
    """Checkov's wall time on the same corpus and the ratio to ours (same object count)."""
    binary = install_checkov()
    if isinstance(binary, str):
        return [f"checkov: skipped, {binary}"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "checkov.json"
        command = [str(binary), "-d", str(corpus), "--framework", "kubernetes", "--quiet",
                   "--compact", "--skip-download", "-o", "json"]  # fmt: skip
        try:
            runs = [_run_to(command, report) for _ in range(repeat)]
        except (BenchError, OSError) as exc:
            return [f"checkov: skipped, it did not run: {exc}"]
        resources = _checkov_resources(report)
    wall = statistics.median(r.wall_s for r in runs)
    ratio = wall / ours.wall_s
    return [
        f"checkov.version: {CHECKOV_VERSION}",
        f"checkov.resources: {resources}  # what Checkov counted; rates use our object count",
        f"checkov.wall_s: {wall:.3f}  # median of {repeat}, min {min(r.wall_s for r in runs):.3f}",
        f"checkov.objects_per_s: {ours.objects / wall:.1f}",
        f"checkov.peak_rss_mb: {max(r.peak_rss_mb for r in runs):.1f}",
        f"static.speedup_vs_checkov: {ratio:.1f}  # target >= {TARGET_CHECKOV_RATIO:.0f}: "
        + _verdict(ratio >= TARGET_CHECKOV_RATIO),
    ]


def cache_dir() -> Path:
    return Path(os.environ.get("KUBESENTINEL_BENCH_CACHE", ROOT / "bench" / ".cache"))


def install_checkov() -> Path | str:
    """The checkov executable of our own venv (created on first use), or why there is none."""
    venv = cache_dir() / f"checkov-{CHECKOV_VERSION}"
    binary = venv / "bin" / "checkov"
    if binary.exists():
        return binary
    print(f"checkov: installing {CHECKOV_VERSION} into {venv} (first run only)", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", f"checkov=={CHECKOV_VERSION}"],
    ]  # fmt: skip
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, check=False,
                                  timeout=CHECKOV_INSTALL_TIMEOUT_S)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"could not install checkov {CHECKOV_VERSION}: {exc}"
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"could not install checkov {CHECKOV_VERSION} (pip: {tail})"
    return binary if binary.exists() else f"checkov {CHECKOV_VERSION} installed no executable"


def _run_to(command: Sequence[str], output: Path) -> Run:
    """Like run(), stdout to ``output``, with Checkov's offline environment."""
    return run(command, output, {**os.environ, **CHECKOV_ENV})


def _checkov_resources(report: Path) -> int | str:
    try:
        data = json.loads(report.read_text(encoding="utf-8") or "null")
    except ValueError:
        return "unknown"
    reports = data if isinstance(data, list) else [data]
    counts = [r.get("summary", {}).get("resource_count") for r in reports if isinstance(r, dict)]
    known = [c for c in counts if isinstance(c, int)]
    return sum(known) if known else "unknown"


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def byte_compile() -> list[str]:
    """Compile the package's modules to bytecode first, as an installed wheel ships them.

    With PYTHONDONTWRITEBYTECODE set (as on some CI machines) an editable checkout would
    otherwise compile every module from source in every timed process (~35 ms each time)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("kubesentinel")
    if spec is None or not spec.submodule_search_locations:
        return ["static.bytecode: skipped, kubesentinel is not importable"]
    ok = all(
        compileall.compile_dir(location, quiet=1) for location in spec.submodule_search_locations
    )
    return [f"static.bytecode: {'compiled' if ok else 'FAILED to compile'} (as installed)"]


def startup() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "deployment.yaml"
        manifest.write_text(TINY_MANIFEST, encoding="utf-8")
        runs = [run(scan_command(manifest, os.devnull)) for _ in range(STARTUP_RUNS)]
    median = statistics.median(r.wall_s for r in runs)
    return [
        f"static.startup_s: {median:.3f}  # median of {STARTUP_RUNS}, min "
        f"{min(r.wall_s for r in runs):.3f}, target <= {TARGET_STARTUP_S}: "
        + _verdict(median <= TARGET_STARTUP_S),
        f"static.startup_peak_rss_mb: {max(r.peak_rss_mb for r in runs):.1f}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Static-scan throughput, memory and start-up.")
    parser.add_argument("--corpus", type=Path, default=None, help="default: shared/corpus/real")
    parser.add_argument("--repeat", type=int, default=5, help="timed corpus runs (median)")
    parser.add_argument("--checkov-repeat", type=int, default=1, help="timed Checkov runs")
    parser.add_argument("--no-checkov", action="store_true", help="skip the Checkov comparison")
    args = parser.parse_args(argv)
    corpus = args.corpus or default_corpus()
    try:
        _emit(byte_compile())
        if corpus.is_dir():
            ours = throughput(corpus, max(1, args.repeat))
            _emit(ours.lines)
        else:
            ours = None
            _emit([f"static.corpus: skipped, {corpus} is absent"])
        _emit(startup())
        if args.no_checkov:
            _emit(["checkov: skipped, --no-checkov"])
        elif ours is None:
            _emit(["checkov: skipped, no corpus"])
        else:
            _emit(checkov(corpus, ours, max(1, args.checkov_repeat)))
    except (BenchError, OSError, KeyError, ValueError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _emit(lines: Sequence[str]) -> None:
    for line in lines:
        print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
