"""The ``kubesentinel ai`` commands: ``train`` a behavioural model on Falco events and
``score`` events with it (``serve`` is in cli_ai_serve.py). Kept apart from cli.py like
cli_vault.py; only these modules print.

Inputs are Falco JSON lines as the monitor reads them (parsed and mapped to workloads by the
monitor's own parser and enricher). A malformed line is reported with its file and line and
skipped; the run goes on and ends with exit code 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from kubesentinel.cli_ai_serve import add_serve
from kubesentinel.config import Config
from kubesentinel.errors import InputError, UsageError

if TYPE_CHECKING:
    from kubesentinel.models.event import Event

EXIT_CLEAN, EXIT_INPUT = 0, 2
BATCH: Final = 4096
MAX_REPORTED: Final = 20  # malformed lines named one by one; the rest are counted
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
NS: Final = 1_000_000_000


def add_commands(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    ai = commands.add_parser(
        "ai", help="the behavioural analyzer: train a model of normal behaviour, score events"
    )
    sub = ai.add_subparsers(dest="ai_command", required=True, metavar="COMMAND")
    train = sub.add_parser(
        "train", parents=parents, help="learn each workload's normal behaviour from Falco events"
    )
    train.add_argument(
        "--events",
        nargs="+",
        required=True,
        metavar="PATH",
        help="Falco JSON lines ('-' for stdin), all of them normal behaviour",
    )
    train.add_argument(
        "--model",
        metavar="PATH",
        help="where to write the model, .json or .json.zst (default: ai.model_path)",
    )
    train.add_argument(
        "--window",
        metavar="DURATION|START/END",
        help="the training window: the first DURATION of the events (4h, 90m, "
        "2d) or RFC 3339 START/END (either may be empty); events outside it "
        "are not learned (default: all)",
    )
    train.add_argument(
        "--warmup",
        type=float,
        default=1 / 3,
        metavar="SHARE",
        help="share of the window learned before calibration starts scoring (default: 1/3)",
    )
    train.add_argument(
        "--service-cidr",
        action="append",
        metavar="CIDR",
        help="the cluster's service range (repeatable; default 10.96.0.0/12)",
    )
    train.add_argument(
        "--pod-cidr",
        action="append",
        metavar="CIDR",
        help="the cluster's pod range (repeatable; default 10.244.0.0/16)",
    )
    train.add_argument(
        "--cluster",
        default="default",
        metavar="NAME",
        help="cluster label of the events' workloads, as the monitor's --cluster",
    )
    train.set_defaults(handler=_train)

    score = sub.add_parser("score", parents=parents, help="score Falco events with a model")
    score.add_argument(
        "--events", required=True, metavar="PATH", help="Falco JSON lines, '-': stdin"
    )
    score.add_argument("--model", metavar="PATH", help="the model (default: ai.model_path)")
    score.add_argument(
        "--output",
        default="-",
        metavar="PATH",
        help="JSON lines, one per event in input order (default: stdout)",
    )
    score.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="anomalous at or above T, in [0, 1] (default: ai.threshold)",
    )
    score.add_argument(
        "--no-learn",
        action="store_true",
        help="do not keep learning from the events scored below the threshold",
    )
    score.add_argument(
        "--save-model",
        metavar="PATH",
        help="write the model, with what it kept learning, here afterwards",
    )
    score.add_argument("--cluster", default="default", metavar="NAME",
                       help="cluster label of the events' workloads, as the monitor's "
                       "--cluster")  # fmt: skip
    score.set_defaults(handler=_score)
    add_serve(sub, parents)


@dataclass(slots=True)
class _Reading:
    """Events read so far, and the malformed lines met on the way."""

    problems: int = 0
    lines: int = 0
    progress: _Progress | None = None
    uuids: list[str | None] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    def report(self, origin: str, reason: str) -> None:
        self.problems += 1
        if self.problems <= MAX_REPORTED:
            _clear(self.progress)
            print(f"kubesentinel: error KS-E031: {origin}: {reason}", file=sys.stderr)


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.shown = label, max(total, 1), -1

    def update(self, done: int) -> None:
        percent = min(100, done * 100 // self.total)
        if percent != self.shown:
            self.shown = percent
            bar = "#" * (percent // 4)
            sys.stderr.write(f"\r{self.label} [{bar:<25}] {percent:3d}%")
            sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r" + " " * (len(self.label) + 34) + "\r")
        sys.stderr.flush()


def _clear(progress: _Progress | None) -> None:
    if progress is not None:
        progress.clear()


def _batches(path: str, cluster: str, reading: _Reading) -> Iterator[list[Event]]:
    """Events of one file, a batch at a time, in file order."""
    from kubesentinel.runtime.enrich import Enricher
    from kubesentinel.runtime.parse import parse_batch
    from kubesentinel.runtime.sources.interface import RawAlert

    enricher = Enricher(cluster)
    name = "stdin" if path == "-" else path
    stream: IO[bytes]
    try:
        stream = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    size = 0 if path == "-" else Path(path).stat().st_size
    progress = _Progress(Path(name).name, size) if size and sys.stderr.isatty() else None
    reading.progress = progress
    done = 0
    try:
        while True:
            raws = []
            for _ in range(BATCH):
                line = stream.readline()
                if not line:
                    break
                done += len(line)
                reading.lines += 1
                if line.strip():
                    raws.append(RawAlert(line, f"{name}:{reading.lines}", 0))
            if not raws:
                break
            parsed, rejected = parse_batch(raws)
            for bad in rejected:
                reading.report(bad.origin, bad.reason)
            reading.uuids.extend(alert.uuid for alert, _ in parsed)
            reading.where.extend(alert.origin for alert, _ in parsed)
            if progress is not None:
                progress.update(done)
            yield enricher.enrich(parsed)
    finally:
        _clear(progress)
        if path != "-":
            stream.close()


def _window(text: str | None, events: list[Event]) -> tuple[int, int]:
    """The training window in ns, [start, end]."""
    if not text or not events:
        return 0, 2**63 - 1
    match = _DURATION.fullmatch(text.strip())
    if match:
        first = min(e.time_ns for e in events)
        return first, first + int(float(match.group(1)) * _UNITS[match.group(2)] * NS)
    start, slash, end = text.partition("/")
    if not slash:
        raise UsageError(
            f"--window {text!r} is neither a duration nor START/END",
            hint="e.g. --window 6h, or --window 2026-01-01T00:00:00Z/2026-01-02T00:00:00Z",
        )
    return _instant(start, 0), _instant(end, 2**63 - 1)


def _instant(text: str, default: int) -> int:
    from kubesentinel.runtime.parse import _rfc3339_ns

    if not text.strip():
        return default
    value = _rfc3339_ns(text.strip())
    if value is None:
        raise UsageError(f"--window: {text!r} is not an RFC 3339 time (2026-01-01T00:00:00Z)")
    return value


def _model_path(given: str | None, config: Config) -> Path:
    from kubesentinel.ai.modelfile import refuse_pickle

    path = Path(given or config.ai.model_path)
    refuse_pickle(path)
    return path


def _train(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.ai.analyzer import Analyzer
    from kubesentinel.ai.calibrate import stated_rate
    from kubesentinel.ai.features import PeerClasses
    from kubesentinel.ai.modelfile import save_analyzer

    model = _model_path(args.model, config)
    if not 0 <= args.warmup < 1:
        raise UsageError(f"--warmup must be within [0, 1), got {args.warmup}")
    try:
        peers = PeerClasses(
            args.service_cidr or PeerClasses().service_cidrs,
            args.pod_cidr or PeerClasses().pod_cidrs,
        )
    except ValueError as exc:
        raise UsageError(f"bad CIDR: {exc}") from None
    reading = _Reading()
    events: list[Event] = []
    for path in args.events:
        for batch in _batches(path, args.cluster, reading):
            events.extend(batch)
    start, end = _window(args.window, events)
    inside = [e for e in events if start <= e.time_ns <= end]
    if not inside:
        raise InputError(
            "no events to learn from" + (" inside --window" if events else ""),
            hint="train on Falco JSON lines of normal behaviour",
        )
    analyzer, report = Analyzer.fit(
        inside, warmup=args.warmup, threshold=config.ai.threshold, peers=peers
    )
    meta = {
        "events": report.events,
        "workloads": report.workloads,
        "start_ns": report.start_ns,
        "end_ns": report.end_ns,
        "calibration_events": report.calibration_events,
    }
    save_analyzer(analyzer, model, meta)
    hours = (report.end_ns - report.start_ns) / NS / 3600
    skipped = len(events) - len(inside)
    print(
        f"kubesentinel: learned {report.events} events of {report.workloads} workloads over "
        f"{hours:.1f} h" + (f" ({skipped} outside the window)" if skipped else "") + "; "
        f"calibrated on {report.calibration_events}: threshold {config.ai.threshold} flags "
        f"{stated_rate(config.ai.threshold) * 10_000:.2g} in 10,000 training events; "
        f"wrote {model}",
        file=sys.stderr,
    )
    return _exit(reading)


def _score(args: argparse.Namespace, config: Config) -> int:
    import orjson

    from kubesentinel.ai.modelfile import load_analyzer, save_analyzer

    threshold = config.ai.threshold if args.threshold is None else args.threshold
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be within [0, 1], got {threshold}")
    save_to = _model_path(args.save_model, config) if args.save_model else None
    analyzer = load_analyzer(_model_path(args.model, config), threshold)
    analyzer.learning = not args.no_learn
    reading = _Reading()
    out: IO[bytes]
    try:
        out = sys.stdout.buffer if args.output == "-" else Path(args.output).open("wb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot write {args.output}: {exc.strerror}") from None
    index = anomalies = 0
    try:
        for batch in _batches(args.events, args.cluster, reading):
            lines = []
            for event, scored in zip(batch, analyzer.score_batch(batch), strict=True):
                record: dict[str, Any] = {"index": index}
                uuid = reading.uuids[index]
                if uuid is not None:
                    record["uuid"] = uuid
                anomalous = scored.score >= threshold
                anomalies += anomalous
                record.update(
                    score=round(scored.score, 4),
                    anomalous=anomalous,
                    workload=event.workload.key,
                    reasons=list(scored.reasons),
                    origin=reading.where[index],
                )
                lines.append(orjson.dumps(record))
                index += 1
            lines.append(b"")
            out.write(b"\n".join(lines))
    finally:
        if args.output != "-":
            out.close()
        else:
            out.flush()
    if save_to is not None:
        save_analyzer(
            analyzer, save_to, {"continued_from": str(args.model or config.ai.model_path)}
        )
    print(
        f"kubesentinel: scored {index} events, {anomalies} anomalous at threshold {threshold}",
        file=sys.stderr,
    )
    return _exit(reading)


def _exit(reading: _Reading) -> int:
    if reading.problems:
        more = reading.problems - MAX_REPORTED
        extra = f" ({more} more not shown)" if more > 0 else ""
        print(f"kubesentinel: {reading.problems} malformed lines skipped{extra}", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_CLEAN
