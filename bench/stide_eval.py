"""STIDE on the real captures in ../shared/falco/captures: leave-one-out anomaly rates and speed.

Each capture is converted with Debian's sysdig at run time (``sysdig -r FILE -j -pc``: the
container layout, so keys are container/process). Then:

1. leave-one-out: for each capture, train on every other capture and score this one;
2. within one capture: train on the first second of run_as_user_0_container.scap, score the
   rest (where an ``ls`` runs in the nginx container);
3. events/s of ``learn`` and ``score`` (reader excluded) on that capture repeated in memory.

What so few captures can show: that the reader and the model run on real sysdig output, that a
trace scores 0 against itself, that programs never seen (``ls`` in a container) saturate while
daemons seen before stay low, and the model's speed. What they cannot show: detection or false
alarm rates. Four regression traces from three machines and years (2016-2019), 3,890 events in
all, none of them an attack, and mostly different programs: leave-one-out mostly measures
"this program was never learned". Rates here are not an evaluation of STIDE as a detector.

Run: python bench/stide_eval.py [--captures DIR] [--k 6] [--frame 20] [--repeat 50]
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kubesentinel.ai.stide import META_EVENTS, Stide, StideScore
from kubesentinel.ai.sysdig import Malformed, read_events
from kubesentinel.models.syscall_event import EXIT, SyscallEvent

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT.parent / "shared" / "falco" / "captures"


def convert(path: Path) -> list[SyscallEvent]:
    out = subprocess.run(
        ["sysdig", "-r", str(path), "-j", "-pc"], capture_output=True, timeout=300, check=True
    ).stdout
    bad: list[Malformed] = []
    events = list(read_events(io.BytesIO(out), path.name, bad.append))
    for item in bad:
        print(f"  skipped {item}")
    return events


def syscalls(events: list[SyscallEvent]) -> int:
    return sum(e.direction != EXIT and e.evt_type not in META_EVENTS for e in events)


def rates(model: Stide, events: list[SyscallEvent], scores: list[StideScore]) -> str:
    if not scores:
        return "no system call entries to score"
    n = len(scores)
    unknown = sum(model.key_of(events[s.index]) not in model.keys for s in scores)
    positive = sum(s.score > 0 for s in scores)
    high = sum(s.score >= 0.5 for s in scores)
    mean = sum(s.score for s in scores) / n
    return (
        f"{n:5d} scored  mean {mean:.3f}  >0: {positive / n:6.1%}  >=0.5: {high / n:6.1%}  "
        f"of unlearned keys: {unknown / n:6.1%}"
    )


def leave_one_out(traces: dict[str, list[SyscallEvent]], k: int, frame: int) -> None:
    print(f"\n1. leave-one-out (k={k}, frame={frame}): train on the others, score this one")
    for name, events in traces.items():
        model = Stide(k, frame)
        for other, train in traces.items():
            if other != name:
                model.learn(train)
        print(f"  {name:30s} {rates(model, events, model.score(events))}")


def within(events: list[SyscallEvent], k: int, frame: int) -> None:
    start = next(e.time_ns for e in events if e.time_ns is not None) or 0
    cut = next(i for i, e in enumerate(events) if (e.time_ns or 0) > start + 1_000_000_000)
    model = Stide(k, frame)
    model.learn(events[:cut])
    test = events[cut:]
    scores = model.score(test)
    print(f"\n2. run_as_user_0_container.scap: train on the first second ({cut} events), score "
          f"the rest ({len(test)})")  # fmt: skip
    print(f"  {'all':30s} {rates(model, test, scores)}")
    by_key: dict[str, list[StideScore]] = {}
    for s in scores:
        by_key.setdefault(model.key_of(test[s.index]), []).append(s)
    for key, keyed in sorted(by_key.items(), key=lambda kv: -len(kv[1])):
        mean = sum(s.score for s in keyed) / len(keyed)
        top = max(keyed, key=lambda s: s.score)
        learned = "learned" if key in model.keys else "new"
        print(f"  {key:30s} {len(keyed):4d} scored  mean {mean:.3f}  max {top.score:.2f}  "
              f"({learned})")  # fmt: skip
    worst = max(scores, key=lambda s: s.score)
    print(f"  highest: {worst.score:.2f} {worst.reason}")


def speed(events: list[SyscallEvent], k: int, frame: int, repeat: int) -> None:
    stream = events * repeat
    model = Stide(k, frame)
    started = time.perf_counter()
    model.learn(stream)
    learn_s = time.perf_counter() - started
    probe = Stide(k, frame)
    probe.learn(events[: len(events) // 2])  # half learned: scoring meets misses and hits
    started = time.perf_counter()
    probe.score(stream)
    score_s = time.perf_counter() - started
    print(f"\n3. speed on run_as_user_0_container.scap x{repeat} ({len(stream):,} events, "
          f"{syscalls(stream):,} system call entries), one pass each, one core:")  # fmt: skip
    calls = syscalls(stream)
    print(
        f"  learn {len(stream) / learn_s:12,.0f} events/s ({calls / learn_s:,.0f} call entries/s)"
    )
    print(
        f"  score {len(stream) / score_s:12,.0f} events/s ({calls / score_s:,.0f} call entries/s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=Path, default=CAPTURES)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--frame", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("sysdig") is None:
        print("needs sysdig: apt-get install sysdig (Debian's 0.29 reads captures offline)")
        return 2
    paths = sorted(args.captures.glob("*.scap"))
    if not paths:
        print(f"no .scap captures in {args.captures}")
        return 2
    traces: dict[str, list[SyscallEvent]] = {}
    print("captures (sysdig -j -pc):")
    for path in paths:
        events = convert(path)
        traces[path.name] = events
        print(
            f"  {path.name:30s} {len(events):5d} events, {syscalls(events):5d} system call entries"
        )
    leave_one_out(traces, args.k, args.frame)
    main_trace = traces.get("run_as_user_0_container.scap")
    if main_trace:
        within(main_trace, args.k, args.frame)
        speed(main_trace, args.k, args.frame, args.repeat)
    print("\nThese traces show the model runs on real sysdig output; with four benign traces of "
          "different programs they cannot show detection or false-alarm rates.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
