"""The behavioural analyzer on harder, differently made streams (bench/ai_streams.py).

Trains on the normal period (the first 22 h of 48), scores the rest in monitor-sized batches
with continued learning on, and prints, per seed: ROC AUC (event level), detection and time to
detect per attack scenario (caught when any of its events scores at or above the threshold),
false alarms per 10,000 benign events and per workload-hour, and which categories of benign
change alerted. The same figures for a simple reference, so they have context: per workload,
"never seen this (process, parent, peer class and port, generalised path) combination", which
learns everything it sees.

    .venv/bin/python bench/ai_hard_eval.py [--seeds 1 2 3] [--hours 48] [--threshold 0.75]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ai_eval import roc_auc
from ai_streams import SCENARIOS, Stream, generate

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.features import PeerClasses, generalise_path, split_connection
from kubesentinel.models.event import Event
from kubesentinel.runtime.enrich import Enricher
from kubesentinel.runtime.parse import parse_batch
from kubesentinel.runtime.sources.interface import RawAlert

NS = 1_000_000_000
BATCH = 2048


def events_of(stream: Stream) -> list[Event]:
    raws = [RawAlert(line.encode(), f"hard:{i}", 0) for i, line in enumerate(stream.lines(), 1)]
    parsed, rejected = parse_batch(raws)
    assert not rejected, rejected[:3]
    events = Enricher(stream.cluster).enrich(parsed)
    assert len(events) == len(stream.records)
    return events


class NeverSeen:
    """Reference: score 1 / (1 + times this workload showed this combination before)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, ...]] = Counter()
        self.peers = PeerClasses()

    def key(self, e: Event) -> tuple[str, ...]:
        f = e.fields
        name = f.get("fd.name") if isinstance(f.get("fd.name"), str) else ""
        peer = path = ""
        conn = split_connection(name) if "->" in name else None
        if conn is not None:
            ip = conn[0] if f.get("evt.type") in ("accept", "accept4") else conn[2]
            peer = f"{self.peers.classify(ip)}:{conn[3]}"
        elif name.startswith("/"):
            path = generalise_path(name)
        proc = f.get("proc.name") or f.get("ka.uri.param[command]") or ""
        return (e.workload.key, e.rule, str(proc), str(f.get("proc.pname") or ""), peer, path)

    def learn(self, events: Sequence[Event]) -> None:
        for e in events:
            self.counts[self.key(e)] += 1

    def score(self, events: Sequence[Event]) -> list[float]:
        out = []
        for e in events:
            k = self.key(e)
            out.append(1.0 / (1 + self.counts[k]))
            self.counts[k] += 1
        return out


def figures(
    stream: Stream,
    test: Sequence[Event],
    records: Sequence[Any],
    scores: Sequence[float],
    threshold: float,
) -> dict[str, Any]:
    labels = [r.scenario is not None for r in records]
    benign = [
        (e, r, s) for e, r, s in zip(test, records, scores, strict=True) if r.scenario is None
    ]
    alarms = [(e, r, s) for e, r, s in benign if s >= threshold]
    hours_seen = {(e.workload.key, e.time_ns // (3600 * NS)) for e in test}
    per: dict[str, dict[str, Any]] = {}
    for sid in SCENARIOS:
        mine = [(e, s) for e, r, s in zip(test, records, scores, strict=True) if r.scenario == sid]
        hits = [(e, s) for e, s in mine if s >= threshold]
        start = stream.scenario_start.get(sid, 0)
        per[sid] = {
            "events": len(mine),
            "hits": len(hits),
            "detected": bool(hits),
            "ttd_s": (hits[0][0].time_ns - start) / NS if hits else None,
            "max": max((s for _, s in mine), default=0.0),
        }
    return {
        "auc": roc_auc(list(scores), labels),
        "alarms": alarms,
        "fa_per_10k": len(alarms) / max(len(benign), 1) * 10_000,
        "fa_per_wh": len(alarms) / max(len(hours_seen), 1),
        "workload_hours": len(hours_seen),
        "by_category": Counter(r.benign or "other" for _, r, _ in alarms),
        "scenarios": per,
        "caught": sum(p["detected"] for p in per.values()),
    }


def evaluate(seed: int, hours: float, threshold: float) -> dict[str, Any]:
    stream = generate(seed, hours)
    events = events_of(stream)
    split = next(i for i, e in enumerate(events) if e.time_ns >= stream.train_end_ns)
    analyzer, report = Analyzer.fit(events[:split], threshold=threshold)
    test, records = events[split:], stream.records[split:]
    t0 = time.perf_counter()
    scored = []
    for i in range(0, len(test), BATCH):
        scored.extend(analyzer.score_batch(test[i : i + BATCH]))
    score_s = time.perf_counter() - t0
    ours = figures(stream, test, records, [s.score for s in scored], threshold)
    ours["reasons"] = {
        sid: next(
            (s.reasons for s, r in zip(scored, records, strict=True)
             if r.scenario == sid and s.score >= threshold),
            (),
        )
        for sid in SCENARIOS
    }  # fmt: skip
    index = {id(e): i for i, e in enumerate(test)}
    ours["alarm_examples"] = [
        (
            e.workload.key,
            r.benign or "other",
            scored[index[id(e)]].score,
            scored[index[id(e)]].reasons,
        )
        for e, r, _ in ours["alarms"]
    ]
    ref = NeverSeen()
    ref.learn(events[:split])
    theirs = figures(stream, test, records, ref.score(test), threshold)
    return {
        "seed": seed,
        "train_events": report.events,
        "test_events": len(test),
        "attack_events": sum(r.scenario is not None for r in records),
        "score_s": score_s,
        "ours": ours,
        "ref": theirs,
    }


def show(name: str, f: dict[str, Any], threshold: float) -> None:
    cats = ", ".join(f"{k} {v}" for k, v in f["by_category"].most_common()) or "none"
    print(
        f"  {name}: ROC AUC {f['auc']:.4f}; caught {f['caught']}/{len(SCENARIOS)}; "
        f"at {threshold}: {len(f['alarms'])} false alarms = {f['fa_per_10k']:.2f} per 10k, "
        f"{f['fa_per_wh']:.4f} per workload-hour; alerting benign change: {cats}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--threshold", type=float, default=0.75)
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    results = []
    for seed in args.seeds:
        r = evaluate(seed, args.hours, args.threshold)
        results.append(r)
        print(
            f"seed {seed}: trained on {r['train_events']} events (22 h), scored {r['test_events']} "
            f"({r['attack_events']} attack events) in {r['score_s']:.2f} s "
            f"({r['test_events'] / r['score_s']:,.0f} events/s with learning)"
        )
        show("analyzer ", r["ours"], args.threshold)
        show("reference", r["ref"], args.threshold)
        for sid, s in r["ours"]["scenarios"].items():
            ref = r["ref"]["scenarios"][sid]
            ttd = f"{s['ttd_s']:.0f} s" if s["detected"] else "-"
            print(
                f"    {sid:<22} {'caught' if s['detected'] else 'MISSED':<6} "
                f"{s['hits']}/{s['events']} events, time to detect {ttd:>6}, "
                f"max {s['max']:.3f}   reference "
                f"{'caught' if ref['detected'] else 'MISSED'} max {ref['max']:.2f}"
            )
            if args.verbose:
                for reason in r["ours"]["reasons"][sid][:3]:
                    print(f"        - {reason}")
        if args.verbose:
            for key, cat, score, reasons in r["ours"]["alarm_examples"][:12]:
                print(f"    FA [{cat}] {key} {score:.3f}: {'; '.join(reasons)}")
    for name in ("ours", "ref"):
        rs = [r[name] for r in results]
        print(
            f"{'analyzer ' if name == 'ours' else 'reference'} mean over {len(rs)} seeds: "
            f"AUC {statistics.mean(f['auc'] for f in rs):.4f}, caught "
            f"{sum(f['caught'] for f in rs)}/{len(SCENARIOS) * len(rs)}, FA/10k "
            f"{statistics.mean(f['fa_per_10k'] for f in rs):.2f}, FA/workload-hour "
            f"{statistics.mean(f['fa_per_wh'] for f in rs):.4f}"
        )


if __name__ == "__main__":
    main()
