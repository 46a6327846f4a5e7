"""CEL custom rules: library choice and what CEL rules cost a scan.

(a) Each CEL library that is importable (cel-expr-python, the one we ship; cel-python "celpy"
and common-expression-language "cel" when installed beside it for comparison): how many of
a set of Kubernetes-style expressions it gets right (VAP's macros, strings and optional
libraries, runtime errors), import+compile time, and microseconds per evaluation on a
Deployment, converting the object as a scan does.
(b) Whole ``kubesentinel scan`` processes over 3,000 objects (the shipped examples copied), with
and without ``--rules examples/custom-rules``: median wall time of --repeat runs and peak RSS.

Output: one ``name: number`` per line.
Usage: python bench/cel_bench.py [--repeat N] [--libraries-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "k8s-manifests"
SCAN_OBJECTS = 3000
EVALS = 3000

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web-frontend", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {
        "replicas": 3,
        "template": {
            "spec": {
                "containers": [
                    {"name": "app", "image": "registry.example.com/web:1.2",
                     "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}},
                    {"name": "sidecar", "image": "nginx:latest"},
                ]
            }
        },
    },
}  # fmt: skip
C = "object.spec.template.spec.containers"
# (expression, expected result); None: a runtime error is the right answer.
CASES: list[tuple[str, object]] = [
    ("has(object.metadata.labels) && 'app' in object.metadata.labels", True),
    ("has(object.metadata.annotations)", False),
    (f"{C}.all(c, c.image.startsWith('registry.example.com/'))", False),
    (f"{C}.exists(c, c.image.endsWith(':latest'))", True),
    (f"{C}.exists_one(c, c.name == 'app')", True),
    (f"{C}.map(c, c.name) == ['app', 'sidecar']", True),
    (f"{C}.filter(c, has(c.resources)).size() == 1", True),
    ("size(object.metadata.name) < 64 && object.metadata.name.matches('^[a-z-]+$')", True),
    ("object.metadata.name.contains('front') ? object.spec.replicas >= 2 : false", True),
    ("object.kind in ['Deployment', 'StatefulSet']", True),
    (f"{C}.map(c, c.name).join(',')", "app,sidecar"),  # strings library
    ("object.metadata.name.split('-')[0].upperAscii()", "WEB"),
    ("object.?metadata.?annotations[?'owner'].orValue('none')", "none"),  # optional library
    (f"{C}.all(c, c.?resources.?limits.?memory.hasValue())", False),
    ("object.spec.replicas > 1.5", True),  # heterogeneous numeric comparison
    (f"{C}.map(c, c.ports).size()", None),  # no such key: a runtime error
    ("object.spec.replicas / 0", None),
]
EXPRESSIONS = [  # timed: what the shipped example rules do
    f"{C}.all(c, c.image.startsWith('registry.example.com/'))",
    "has(object.metadata.labels) && 'team' in object.metadata.labels",
    f"{C}.all(c, has(c.resources) && has(c.resources.limits) && 'memory' in c.resources.limits)",
]

Compile = Callable[[str], Any]
Run = Callable[[Any, dict[str, Any]], Any]


def _google() -> tuple[Compile, Run]:
    from cel_expr_python import cel
    from cel_expr_python.ext import ext_optional, ext_strings

    env = cel.NewEnv(
        variables={"object": cel.Type.DYN},
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()],
    )

    def run(program: Any, obj: dict[str, Any]) -> Any:
        value = program.eval(env.Activation(data={"object": obj}))
        if value.type() == cel.Type.ERROR:
            raise RuntimeError(value.value())
        return value.plain_value()

    return env.compile, run


def _celpy() -> tuple[Compile, Run]:
    import celpy  # type: ignore[import-not-found]

    env = celpy.Environment()

    def run(program: Any, obj: dict[str, Any]) -> Any:
        value = program.evaluate({"object": celpy.json_to_cel(obj)})
        if isinstance(value, Exception):
            raise value
        return value

    return lambda text: env.program(env.compile(text)), run


def _rust() -> tuple[Compile, Run]:
    import cel  # type: ignore[import-not-found]

    return cel.compile, lambda program, obj: program.execute({"object": obj})


LIBRARIES = {"cel-expr-python": _google, "cel-python": _celpy, "common-expression-language": _rust}


def library_figures(name: str, make: Callable[[], tuple[Compile, Run]]) -> None:
    started = time.perf_counter()
    try:
        compile_, run = make()
    except ImportError:
        print(f"{name}: skipped (not installed)")
        return
    programs = [compile_(text) for text in EXPRESSIONS]
    setup_ms = (time.perf_counter() - started) * 1000
    right = sum(_correct(compile_, run, text, want) for text, want in CASES)
    started = time.perf_counter()
    for _ in range(EVALS):
        for program in programs:
            run(program, DEPLOYMENT)
    per_eval_us = (time.perf_counter() - started) / (EVALS * len(programs)) * 1e6
    print(f"{name}.correct: {right}/{len(CASES)}")
    print(f"{name}.import_and_compile_ms: {setup_ms:.1f}")
    print(f"{name}.us_per_eval: {per_eval_us:.1f}")


def _correct(compile_: Compile, run: Run, text: str, want: object) -> bool:
    try:
        got = run(compile_(text), DEPLOYMENT)
    except Exception:  # any failure, compile or run time, counts the same
        return want is None
    return want is not None and got == want


def scan_figures(repeat: int) -> None:
    sources = [EXAMPLES / "bad" / "web-frontend.yaml", EXAMPLES / "bad" / "node-agent.yaml",
               EXAMPLES / "good" / "payments-api.yaml"]  # fmt: skip
    text = "\n---\n".join(p.read_text(encoding="utf-8") for p in sources)
    per_copy = 8  # objects in those three files
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(SCAN_OBJECTS // per_copy):
            Path(tmp, f"m{index:04}.yaml").write_text(text, encoding="utf-8")
        base = [sys.executable, "-m", "kubesentinel", "scan", "--path", tmp, "-o", os.devnull]
        for label, extra in (("builtin_only", []), ("with_cel_rules", ["--rules",
                             str(ROOT / "examples" / "custom-rules")])):  # fmt: skip
            runs = [_run([*base, *extra]) for _ in range(repeat)]
            wall = statistics.median(r[0] for r in runs)
            print(f"scan_{SCAN_OBJECTS}_objects.{label}.wall_s: {wall:.2f}")
            print(f"scan_{SCAN_OBJECTS}_objects.{label}.peak_rss_mb: {max(r[1] for r in runs):.0f}")


def _run(argv: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"scan failed: {' '.join(argv)}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--libraries-only",
        action="store_true",
        help="only (a): for a Python with the candidates but no kubesentinel",
    )
    args = parser.parse_args()
    for name, make in LIBRARIES.items():
        library_figures(name, make)
    if not args.libraries_only:
        scan_figures(args.repeat)


if __name__ == "__main__":
    main()
