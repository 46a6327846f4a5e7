"""Evaluation of the behavioural analyzer on `kubesentinel simulate` streams (not a test).

Trains on the normal period of a simulated stream (everything before the first attack),
scores the rest with continued learning on, and prints ROC AUC, detection and time to detect
per attack scenario, false alarms per 10,000 events and per workload-hour, the benign-change
checks, and batch scoring speed on one core.

    .venv/bin/python bench/ai_eval.py [--seed 1] [--hours 24] [--speed-events 300000]

Ground truth: the simulator labels each attack with its steps (time and rule); an event is an
attack event when its (time, rule) is a step of a scenario and it comes from that scenario's
workload. Everything else is benign, including rollouts, new replicas, CronJob runs, the
developers' exec sessions and the rare stdin redirect in staging.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.calibrate import stated_rate
from kubesentinel.models.event import Event
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.parse import parse_batch
from kubesentinel.runtime.simulate import simulate
from kubesentinel.runtime.sources.interface import RawAlert

NS = 1_000_000_000


def events_of(lines: Sequence[str], cluster: str) -> list[Event]:
    raws = [RawAlert(line.encode(), f"sim:{i}", 0) for i, line in enumerate(lines, 1)]
    parsed, rejected = parse_batch(raws)
    assert not rejected, rejected[:3]
    return Enricher(cluster).enrich(parsed)


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Mann-Whitney U with ties counted half."""
    pairs = sorted(zip(scores, labels, strict=True))
    rank_sum, i, n = 0.0, 0, len(pairs)
    while i < n:
        j = i
        while j < n and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # average 1-based rank of the tie group
        rank_sum += mid * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    pos = sum(labels)
    neg = n - pos
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def evaluate(seed: int, hours: float, threshold: float) -> dict[str, Any]:
    sim = simulate(seed=seed, hours=hours)
    events = events_of(list(sim.lines()), sim.cluster)
    steps: dict[tuple[int, str], str] = {}
    for label in sim.labels:
        for step in label.steps:
            steps[(step.time_ns, step.rule)] = label.id
    keys = {label.id: f"{sim.cluster}/{label.workload.key}" for label in sim.labels}
    truth = [
        steps.get((e.time_ns, e.rule))
        if keys.get(steps.get((e.time_ns, e.rule), "")) == e.workload.key
        else None
        for e in events
    ]
    first_attack = min(label.start_ns for label in sim.labels)
    split = next(i for i, e in enumerate(events) if e.time_ns >= first_attack)
    t0 = time.perf_counter()
    analyzer, report = Analyzer.fit(events[:split], threshold=threshold)
    train_s = time.perf_counter() - t0
    test, test_truth = events[split:], truth[split:]
    t0 = time.perf_counter()
    scored = analyzer.score_batch(test)
    score_s = time.perf_counter() - t0
    scores = [s.score for s in scored]
    labels = [t is not None for t in test_truth]
    benign = [(e, s) for e, s, t in zip(test, scored, test_truth, strict=True) if t is None]
    alarms = [(e, s) for e, s in benign if s.score >= threshold]
    hours_seen = {(e.workload.key, e.time_ns // (3600 * NS)) for e in test}
    per_scenario = {}
    for label in sim.labels:
        mine = [(e, s) for e, s, t in zip(test, scored, test_truth, strict=True) if t == label.id]
        hits = [(e, s) for e, s in mine if s.score >= threshold]
        per_scenario[label.id] = {
            "events": len(mine),
            "detected_events": len(hits),
            "detected": bool(hits),
            "time_to_detect_s": (hits[0][0].time_ns - label.start_ns) / NS if hits else None,
            "max_score": max((s.score for _, s in mine), default=0.0),
            "first_reasons": hits[0][1].reasons if hits else (),
        }
    return {
        "seed": seed,
        "hours": hours,
        "train_events": report.events,
        "train_hours": (report.end_ns - report.start_ns) / 3600 / NS,
        "test_events": len(test),
        "attack_events": sum(labels),
        "auc": roc_auc(scores, labels),
        "threshold": threshold,
        "stated_rate": stated_rate(threshold),
        "false_alarms": len(alarms),
        "fa_per_10k": len(alarms) / max(len(benign), 1) * 10_000,
        "fa_per_workload_hour": len(alarms) / max(len(hours_seen), 1),
        "workload_hours": len(hours_seen),
        "alarm_examples": [(e.workload.key, e.rule, s.score, s.reasons) for e, s in alarms[:8]],
        "alarms_by_workload": dict(_count(e.workload.key for e, _ in alarms)),
        "scenarios": per_scenario,
        "train_s": train_s,
        "score_s": score_s,
    }


def _count(keys: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for k in keys:
        out[k] += 1
    return out


def speed(total: int, repeat: int = 3) -> dict[str, float]:
    """Batch scoring events/s on one core, with and without continued learning."""
    hours = max(0.25, total / 3600 / 20)
    sim = simulate(seed=7, hours=hours, events_per_s=20.0)
    events = events_of(list(sim.lines()), sim.cluster)
    first_attack = min(label.start_ns for label in sim.labels)
    split = next(i for i, e in enumerate(events) if e.time_ns >= first_attack)
    analyzer, _ = Analyzer.fit(events[:split])
    test = events[split:]
    out = {"events": float(len(test))}
    for learning in (False, True):
        best = 0.0
        for _ in range(repeat):
            model, _ = Analyzer.fit(events[:split]) if learning else (analyzer, None)
            model.learning = learning
            t0 = time.perf_counter()
            model.score_batch(test)
            best = max(best, len(test) / (time.perf_counter() - t0))
        out["learning" if learning else "score_only"] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--threshold", type=float, default=0.75)
    parser.add_argument("--speed-events", type=int, default=300_000)
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    results = [evaluate(seed, args.hours, args.threshold) for seed in args.seeds]
    for r in results:
        print(
            f"seed {r['seed']}: {r['hours']:g} h simulated, trained on {r['train_events']} "
            f"events ({r['train_hours']:.1f} h), scored {r['test_events']} "
            f"({r['attack_events']} attack events) in {r['score_s']:.2f} s"
        )
        print(
            f"  ROC AUC {r['auc']:.4f}; at threshold {r['threshold']} (stated training rate "
            f"{r['stated_rate'] * 1e4:.2f} per 10k): {r['false_alarms']} false alarms = "
            f"{r['fa_per_10k']:.2f} per 10,000 events, {r['fa_per_workload_hour']:.4f} per "
            f"workload-hour ({r['workload_hours']} workload-hours)"
        )
        for sid, s in r["scenarios"].items():
            ttd = f"{s['time_to_detect_s']:.1f} s" if s["detected"] else "-"
            print(
                f"  {sid:<18} detected {'yes' if s['detected'] else 'NO ':<3}  "
                f"{s['detected_events']}/{s['events']} events, time to detect {ttd}, "
                f"max score {s['max_score']:.3f}"
            )
            for reason in s["first_reasons"][:3]:
                print(f"      - {reason}")
        if r["alarms_by_workload"]:
            print(f"  false alarms by workload: {r['alarms_by_workload']}")
        for key, rule, score, reasons in r["alarm_examples"][:4]:
            print(f"    FA {key} {rule!r} {score:.3f}: {'; '.join(reasons)}")
    print(
        f"mean over {len(results)} seeds: AUC {statistics.mean(r['auc'] for r in results):.4f}, "
        f"FA/10k {statistics.mean(r['fa_per_10k'] for r in results):.2f}, "
        f"scenarios detected {sum(s['detected'] for r in results for s in r['scenarios'].values())}"
        f"/{sum(len(r['scenarios']) for r in results)}"
    )
    if not args.no_speed:
        figures = speed(args.speed_events)
        print(
            f"speed (one core, batch, {figures['events']:.0f} events): "
            f"{figures['score_only']:,.0f} events/s scoring only, "
            f"{figures['learning']:,.0f} events/s with continued learning"
        )


if __name__ == "__main__":
    main()
