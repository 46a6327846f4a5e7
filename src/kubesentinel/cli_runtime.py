"""Runtime commands of the CLI: `monitor`, `incidents list`, `simulate`.

Kept apart from cli.py so each stays short; like cli.py, only this module prints.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesentinel.config import Config
from kubesentinel.errors import UsageError

if TYPE_CHECKING:
    from kubesentinel.models import Priority
    from kubesentinel.runtime.identity import OwnerLookup
    from kubesentinel.runtime.store.sqlite import SQLiteStore

EXIT_CLEAN = 0
DB_NAME = "kubesentinel.db"
DEAD_LETTER_NAME = "dead-letter.jsonl"
OWNER_TTL_S = 300.0
# The HTTP receiver, the pipeline and the store acknowledgements share the GIL; Python's
# default 5 ms switch interval would add up to that much to each hand-over under load.
SWITCH_INTERVAL_S = 0.0005


def add_commands(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Register the runtime subcommands on the CLI's subparsers."""
    monitor = commands.add_parser(
        "monitor", help="ingest Falco alerts and correlate incidents", parents=parents
    )
    monitor.add_argument(
        "--source", metavar="URI",
        help="'-' (stdin), a file, http://HOST:PORT, unix:///PATH or nats://HOST:PORT/SUBJECT "
        "(default: runtime.falco_socket)",
    )  # fmt: skip
    monitor.add_argument("--follow", action="store_true", help="keep reading a growing file")
    monitor.add_argument("--until-eof", action="store_true",
                         help="exit when a finite source ends and print a summary")  # fmt: skip
    monitor.add_argument("--format", "-f", default="table", choices=("table", "json"),
                         help="summary format")  # fmt: skip
    monitor.add_argument("--namespace", action="append", default=[], metavar="NS")
    monitor.add_argument("--deployment", action="append", default=[], metavar="NAME")
    monitor.add_argument("--cluster", default="default", metavar="NAME",
                         help="label for this cluster's events (multi-cluster setups)")  # fmt: skip
    monitor.add_argument("--min-priority", default="debug", metavar="PRIORITY",
                         help="drop alerts below this Falco priority (default: debug)")  # fmt: skip
    monitor.add_argument("--posture", metavar="FILE",
                         help="`kubesentinel scan --format json` output")  # fmt: skip
    monitor.add_argument("--window", type=float, default=300.0, metavar="SECONDS",
                         help="correlation window per workload (default: 300)")  # fmt: skip
    monitor.add_argument("--store", metavar="PATH", help="SQLite store (default: "
                         f"forensics.storage_path/{DB_NAME})")  # fmt: skip
    monitor.add_argument("--dead-letter", metavar="PATH", help="where malformed alerts go "
                         f"(default: forensics.storage_path/{DEAD_LETTER_NAME})")  # fmt: skip
    monitor.add_argument("--workers", type=int, metavar="N",
                         help="processes the monitor may use, capped at the number of cores: "
                         "with 2 or more the store is written by a process of its own "
                         "(default: runtime.workers)")  # fmt: skip
    monitor.add_argument("--kube-context", metavar="NAME",
                         help="kubeconfig context for owner lookups")  # fmt: skip
    monitor.add_argument("--no-k8s-lookup", action="store_true",
                         help="name workloads from pod names only")  # fmt: skip
    monitor.add_argument("--token-env", metavar="VAR", help="variable holding the HTTP bearer "
                         "token (default: KUBESENTINEL_HTTP_TOKEN, may be unset)")  # fmt: skip
    monitor.add_argument("--tls-cert", metavar="FILE", help="PEM certificate for https://")
    monitor.add_argument("--tls-key", metavar="FILE", help="PEM private key for https://")
    monitor.add_argument("--tls-client-ca", metavar="FILE",
                         help="require client certificates from this CA (mutual TLS)")  # fmt: skip
    monitor.add_argument("--allow-unauthenticated", action="store_true",
                         help="take alerts off loopback with neither token nor mTLS")  # fmt: skip
    monitor.set_defaults(handler=_monitor)

    incidents = commands.add_parser("incidents", help="read incidents from the store")
    sub = incidents.add_subparsers(dest="incidents_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="list incidents, newest first", parents=parents)
    listing.add_argument("--format", "-f", default="table", choices=("table", "json"))
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--namespace", metavar="NS")
    listing.add_argument("--store", metavar="PATH")
    listing.set_defaults(handler=_incidents_list)

    simulate = commands.add_parser(
        "simulate", help="write a realistic Falco stream of a cluster", parents=parents
    )
    simulate.add_argument("--out", required=True, metavar="DIR")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--hours", type=float, default=1.0)
    simulate.set_defaults(handler=_simulate)


def _store_path(config: Config, given: str | None) -> Path:
    return Path(given) if given else Path(config.forensics.storage_path) / DB_NAME


def _open_store(path: Path) -> SQLiteStore:
    from kubesentinel.runtime.store.sqlite import SQLiteStore

    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(path)


def _monitor(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.models.posture import Posture
    from kubesentinel.runtime import pipeline
    from kubesentinel.runtime.correlate import Correlator
    from kubesentinel.runtime.deadletter import DeadLetter
    from kubesentinel.runtime.enrich import Enricher
    from kubesentinel.runtime.filters import EventFilter
    from kubesentinel.runtime.metrics import Metrics
    from kubesentinel.runtime.posture import load_posture_file
    from kubesentinel.runtime.sources import open_source
    from kubesentinel.runtime.sources.http_options import options_from_args

    min_priority = _check_monitor_args(args)
    import logging  # the monitor's only: not on the scan's start-up path

    logging.basicConfig(format="kubesentinel: %(levelname)s: %(message)s", stream=sys.stderr)
    # Check the inputs before creating anything on disk: posture file, then source, then store.
    posture: Posture | None = load_posture_file(args.posture) if args.posture else None
    metrics = Metrics()
    uri = args.source or config.runtime.falco_socket
    http = options_from_args(args, uri, os.environ)
    # Signals are handled from here on: a SIGTERM while starting still ends with a summary.
    stop = threading.Event()
    opened: list[Any] = []
    _stop_on_signals(stop, opened)
    source = open_source(
        uri,
        queue_size=config.runtime.buffer_size,
        metrics=metrics,
        follow=args.follow,
        token=http.token,
        tls=http.tls,
    )
    opened.append(source)
    if stop.is_set():
        source.close()
    try:
        store = _open_store(_store_path(config, args.store))
    except BaseException:
        source.close()
        raise
    if posture is not None:
        store.save_posture(posture)
    else:
        posture = store.load_posture()
    dead_letter_path = (
        Path(args.dead_letter)
        if args.dead_letter
        else Path(config.forensics.storage_path) / DEAD_LETTER_NAME
    )
    dead_letter = DeadLetter(dead_letter_path)
    workers = min(args.workers or config.runtime.workers, os.cpu_count() or 1)
    _tune_gc()
    try:
        summary = pipeline.run(
            source,
            enricher=Enricher(cluster=args.cluster, lookup=_owner_lookup(args)),
            correlator=Correlator(window_s=args.window, posture=posture),
            store=store,
            metrics=metrics,
            dead_letter=dead_letter,
            event_filter=EventFilter(
                namespaces=frozenset(args.namespace),
                deployments=frozenset(args.deployment),
                min_priority=min_priority,
            ),
            stop=stop,
            # Files and stdin end at EOF; live sources end at their first idle poll.
            stop_when_idle=args.until_eof and source.live,
            workers=workers,
            # A second core commits to the store while this process parses and correlates.
            store_process=workers >= 2,
            max_batch=min(pipeline.DEFAULT_BATCH, config.runtime.buffer_size),
        )
    finally:
        source.close()
        dead_letter.close()
        store.close()
    report = summary.as_dict(refused=int(metrics.snapshot().get("refused", 0)))
    _print_summary(report, args.format, dead_letter_path)
    return EXIT_CLEAN


def _check_monitor_args(args: argparse.Namespace) -> Priority:
    """Usage errors before anything starts; returns the parsed --min-priority."""
    from kubesentinel.models import Priority

    try:
        min_priority = Priority.parse(args.min_priority)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.window <= 0:
        raise UsageError("--window must be greater than 0")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.follow and args.until_eof:
        raise UsageError("--follow and --until-eof contradict each other")
    return min_priority


def _print_summary(report: dict[str, Any], fmt: str, dead_letter_path: Path) -> None:
    if fmt == "json":
        print(json.dumps(report, indent=2))
        return
    print(
        f"{report['events_read']} alerts read, {report['events_stored']} stored, "
        f"{report['malformed']} malformed, {report['refused']} refused, "
        f"{report['internal']} internal, {report['filtered_out']} filtered out; "
        f"{report['incidents_opened']} incidents opened in {report['duration_s']} s."
    )
    if report["malformed"]:
        print(f"Malformed alerts were written to {dead_letter_path}.", file=sys.stderr)


def _owner_lookup(args: argparse.Namespace) -> OwnerLookup | None:
    """The Kubernetes API when a configuration is found (in-cluster or kubeconfig), else None."""
    if args.no_k8s_lookup:
        return None
    if not (args.kube_context or _kubernetes_configured()):
        return None  # keep the client (about 20 MB) out of a monitor with no cluster to ask
    from kubesentinel.errors import SourceError
    from kubesentinel.runtime.identity import CachedOwnerLookup
    from kubesentinel.runtime.k8s_owners import KubernetesOwnerLookup

    try:
        api = KubernetesOwnerLookup.from_kubeconfig(args.kube_context)
    except SourceError as exc:
        print(f"kubesentinel: notice: owner lookups off, naming workloads from pod names "
              f"({exc.message})", file=sys.stderr)  # fmt: skip
        return None
    return CachedOwnerLookup(api.owner_of, ttl_s=OWNER_TTL_S)


def _tune_gc() -> None:
    """Every alert allocates short-lived dicts; with the default thresholds the collector ran
    often enough to cost a fifth of the monitor's time (60,000 alerts: 4.1 s -> 3.3-3.7 s).
    The objects built at start-up (rules, caches) are frozen out of every later collection."""
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def _kubernetes_configured() -> bool:
    """In a pod (service account env) or with a kubeconfig: the places the client looks."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    paths = os.environ.get("KUBECONFIG", "")
    candidates = [Path(p) for p in paths.split(os.pathsep) if p] or [Path.home() / ".kube/config"]
    return any(path.is_file() for path in candidates)


def _stop_on_signals(stop: threading.Event, sources: list[Any]) -> None:
    """SIGINT/SIGTERM stop reading; the pipeline then stores and closes what it holds."""

    def handle(_signum: int, _frame: Any) -> None:
        stop.set()
        for source in sources:
            source.close()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)


def _incidents_list(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.runtime.incident_view import render_incidents

    path = _store_path(config, args.store)
    if not path.exists():
        raise UsageError(
            f"no incident store at {path}",
            hint="run `kubesentinel monitor` first, or pass --store PATH",
        )
    store = _open_store(path)
    try:
        incidents = store.list_incidents(limit=args.limit, namespace=args.namespace)
    finally:
        store.close()
    sys.stdout.write(render_incidents(incidents, args.format))
    return EXIT_CLEAN


def _simulate(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.runtime.simulate import simulate, write_simulation

    if args.hours <= 0:
        raise UsageError("--hours must be greater than 0")
    counts = write_simulation(simulate(seed=args.seed, hours=args.hours), Path(args.out))
    print(json.dumps(counts, indent=2))
    return EXIT_CLEAN
