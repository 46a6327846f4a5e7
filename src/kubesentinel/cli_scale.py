"""Scale-out commands (docs/scale-out.md): `ingress`, `status`, and `monitor --partitions`.

Kept apart from cli_runtime.py so each stays short; like cli.py, only this module prints.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kubesentinel.config import Config
from kubesentinel.errors import UsageError

if TYPE_CHECKING:
    from kubesentinel.runtime.anomaly import AnomalyStage
    from kubesentinel.runtime.correlate import Correlator
    from kubesentinel.runtime.enrich import Enricher
    from kubesentinel.runtime.identity import OwnerLookup
    from kubesentinel.runtime.scale.source import PartitionedSource
    from kubesentinel.runtime.store.interface import VaultStore

EXIT_CLEAN = 0
DEFAULT_LEASE_TTL_S = 10.0
DEFAULT_PART_ACK_WAIT_S = 5.0


def add_commands(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    from kubesentinel.runtime.scale.partition import DEFAULT_OUT_STREAM, DEFAULT_OUT_SUBJECT

    ingress = commands.add_parser(
        "ingress", help="re-publish Falco alerts from NATS to per-workload partitions",
        parents=parents,
    )  # fmt: skip
    ingress.add_argument("--source", required=True, metavar="URI",
                         help="nats://HOST:PORT[/SUBJECT][?stream=S&durable=D] (default subject "
                         "falco.>, durable kubesentinel-ingress)")  # fmt: skip
    ingress.add_argument("--partitions", type=int, required=True, metavar="N",
                         help="number of partitions; every worker's monitor --partitions must "
                         "give the same")  # fmt: skip
    _add_out_options(ingress, DEFAULT_OUT_SUBJECT, DEFAULT_OUT_STREAM)
    ingress.add_argument("--cluster", default="default", metavar="NAME",
                         help="label for this cluster's events, as the monitor's --cluster "
                         "(default: default)")  # fmt: skip
    ingress.add_argument("--no-k8s-lookup", action="store_true",
                         help="name workloads from pod names only")  # fmt: skip
    ingress.add_argument("--kube-context", metavar="NAME",
                         help="kubeconfig context for owner lookups")  # fmt: skip
    ingress.add_argument("--dead-letter", metavar="PATH",
                         help="where malformed alerts go (default: "
                         "forensics.storage_path/dead-letter-ingress.jsonl)")  # fmt: skip
    ingress.add_argument("--until-eof", action="store_true",
                         help="exit at the first idle poll and print a summary")  # fmt: skip
    ingress.add_argument("--format", "-f", default="table", choices=("table", "json"),
                         help="format of the summary printed when ingress stops (default: "
                         "table)")  # fmt: skip
    ingress.set_defaults(handler=_ingress)

    status = commands.add_parser(
        "status", help="scale-out workers, partitions, lag and vault size", parents=parents
    )
    status.add_argument("--nats", required=True, metavar="URL", help="nats://HOST:PORT")
    _add_out_options(status, DEFAULT_OUT_SUBJECT, DEFAULT_OUT_STREAM)
    status.add_argument("--ingress-stream", metavar="NAME",
                        help="stream ingress reads (default: the one holding falco.>)")  # fmt: skip
    status.add_argument("--ingress-durable", default="kubesentinel-ingress", metavar="NAME",
                        help="ingress's durable consumer, whose lag is shown (default: "
                        "kubesentinel-ingress)")  # fmt: skip
    status.add_argument("--store", metavar="URL", help="the vault (default: forensics.storage_url)")
    status.add_argument("--format", "-f", default="table", choices=("table", "json"),
                        help="output format (default: table)")  # fmt: skip
    status.set_defaults(handler=_status)


def add_monitor_options(monitor: argparse.ArgumentParser) -> None:
    """`monitor --partitions N --worker-id ID`: a scale-out worker."""
    from kubesentinel.runtime.scale.partition import DEFAULT_OUT_STREAM

    monitor.add_argument("--partitions", type=int, metavar="N",
                         help="run as a scale-out worker over N partitions that ingress feeds; "
                         "--source nats://HOST:PORT[/OUT-SUBJECT] (default "
                         "kubesentinel.part); needs a postgresql:// store")  # fmt: skip
    monitor.add_argument("--worker-id", metavar="ID",
                         help="this worker's name in the lease bucket (default: host name and "
                         "pid)")  # fmt: skip
    monitor.add_argument(
        "--part-stream",
        default=DEFAULT_OUT_STREAM,
        metavar="NAME",
        help=f"stream holding the partitions (default {DEFAULT_OUT_STREAM})",
    )
    monitor.add_argument("--lease-ttl", type=_seconds_arg, default=DEFAULT_LEASE_TTL_S, metavar="S",
                         help="lease TTL of a new lease bucket: how long a dead worker keeps "
                         f"its partitions (default {DEFAULT_LEASE_TTL_S:g})")  # fmt: skip
    monitor.add_argument("--part-ack-wait", type=_seconds_arg, default=DEFAULT_PART_ACK_WAIT_S,
                         metavar="S", help="redelivery delay of unacknowledged alerts "
                         f"(default {DEFAULT_PART_ACK_WAIT_S:g})")  # fmt: skip


def _seconds_arg(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return seconds


def _add_out_options(parser: argparse.ArgumentParser, subject: str, stream: str) -> None:
    parser.add_argument("--out-subject", default=subject, metavar="SUBJECT",
                        help=f"partition n is SUBJECT.n (default {subject})")  # fmt: skip
    parser.add_argument("--out-stream", default=stream, metavar="NAME",
                        help=f"JetStream stream of the partitions (default {stream})")  # fmt: skip


# -- monitor --partitions --------------------------------------------------------------------


def partitioned_source(args: argparse.Namespace, uri: str, config: Config) -> PartitionedSource:
    from kubesentinel.runtime.scale.partition import DEFAULT_OUT_SUBJECT
    from kubesentinel.runtime.scale.source import PartitionedSource

    if args.partitions < 1:
        raise UsageError("--partitions must be at least 1")
    if not (args.lease_ttl > 0 and args.part_ack_wait > 0):
        raise UsageError("--lease-ttl and --part-ack-wait must be positive")
    parts = urlsplit(uri)
    if parts.scheme != "nats":
        raise UsageError("--partitions reads nats://HOST:PORT[/SUBJECT] (the ingress output)")
    return PartitionedSource(
        f"nats://{parts.netloc}",
        partitions=args.partitions,
        worker_id=args.worker_id or f"{socket.gethostname()}-{os.getpid()}",
        out_subject=parts.path.lstrip("/") or DEFAULT_OUT_SUBJECT,
        out_stream=args.part_stream,
        lease_ttl_s=args.lease_ttl,
        ack_wait_s=args.part_ack_wait,
        queue_size=config.runtime.buffer_size,
        queue_bytes=config.runtime.buffer_bytes,
    )


def wire_worker(
    source: PartitionedSource,
    store: VaultStore,
    correlator_args: tuple[float, float],
    *,
    posture: Any,
    cluster: str,
    lookup: OwnerLookup | None,
    anomaly: AnomalyStage | None = None,
) -> tuple[Enricher, Correlator]:
    """The worker's enricher and correlator, its handover set and its leases started. With
    an in-process analyzer, its per-workload state moves with the partitions."""
    from kubesentinel.ai.scorer import LocalScorer
    from kubesentinel.runtime.scale.fence import PartitionFence
    from kubesentinel.runtime.scale.handover import (
        HandoverCorrelator,
        PinnedEnricher,
        StoreHandover,
    )
    from kubesentinel.runtime.scale.workload_states import WorkloadStates
    from kubesentinel.runtime.store.postgres import PostgresStore

    if not isinstance(store, PostgresStore):
        raise UsageError("--partitions needs a shared postgresql:// store (--store)")
    # Writes are checked against newer owners of their partitions (docs/scale-out.md).
    fence = PartitionFence(store.location, source.partitions, source.worker_id, source.fenced)
    source.fence = store.fence = fence
    if source.leases is not None:  # a paused worker's open write must not outlive its lease
        store.limit_idle_transactions(source.leases.ttl_s)
    correlator = HandoverCorrelator(*correlator_args, posture=posture, store=store, source=source)
    scorer = anomaly.scorer if anomaly is not None else None
    analyzer = scorer.analyzer if isinstance(scorer, LocalScorer) else None
    states = WorkloadStates(store.location) if analyzer is not None else None
    source.handover = StoreHandover(
        store, correlator, source.partitions, analyzer=analyzer, states=states
    )
    source.start()
    return PinnedEnricher(source.pinned, cluster, lookup), correlator


# -- ingress ---------------------------------------------------------------------------------


def _ingress(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.cli_runtime import _owner_lookup, _stop_on_signals
    from kubesentinel.runtime import logs
    from kubesentinel.runtime.deadletter import DeadLetter
    from kubesentinel.runtime.enrich import Enricher
    from kubesentinel.runtime.scale.ingress import PartitionPublisher, run_ingress
    from kubesentinel.runtime.sources import open_source

    if args.partitions < 1:
        raise UsageError("--partitions must be at least 1")
    uri = args.source
    parts = urlsplit(uri)
    if parts.scheme != "nats":
        raise UsageError("ingress reads nats://HOST:PORT[/SUBJECT]")
    if "durable=" not in parts.query:
        uri += ("&" if parts.query else "?") + "durable=kubesentinel-ingress"
    logs.configure("text")
    os.umask(0o077)
    stop = threading.Event()
    opened: list[Any] = []
    _stop_on_signals(stop, opened)
    source = open_source(uri, queue_size=config.runtime.buffer_size,
                         queue_bytes=config.runtime.buffer_bytes)  # fmt: skip
    opened.append(source)
    try:
        publisher = PartitionPublisher(
            f"nats://{parts.netloc}", args.out_subject, args.out_stream, args.partitions
        )
    except BaseException:
        source.close()
        raise
    path = Path(
        args.dead_letter or Path(config.forensics.storage_path) / "dead-letter-ingress.jsonl"
    )
    dead_letter = DeadLetter(path)
    logs.log.info("ingress: %s -> %s.<0..%d>", source.name, args.out_subject, args.partitions - 1)
    try:
        summary = run_ingress(
            source, publisher,
            enricher=Enricher(cluster=args.cluster, lookup=_owner_lookup(args)),
            dead_letter=dead_letter, stop=stop, stop_when_idle=args.until_eof,
        )  # fmt: skip
    finally:
        source.close()
        publisher.close()
        dead_letter.close()
    report = summary.as_dict()
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['alerts_read']} alerts read, {report['published']} published, "
              f"{report['malformed']} malformed, {report['internal']} internal, "
              f"{report['not_published']} not published in {report['duration_s']} s.")  # fmt: skip
    return EXIT_CLEAN


# -- status ----------------------------------------------------------------------------------


def _status(args: argparse.Namespace, config: Config) -> int:
    import asyncio

    from kubesentinel.runtime.scale.status import collect

    store_report: dict[str, Any] | None = None
    location = args.store or config.forensics.storage_url
    if location:
        from kubesentinel.cli_runtime import _open_store

        store = _open_store(config, location)
        try:
            store_report = store.vault_stats()
        finally:
            store.close()
    report = asyncio.run(
        collect(
            args.nats,
            out_stream=args.out_stream,
            ingress_stream=args.ingress_stream,
            ingress_durable=args.ingress_durable,
        )
    )
    report["vault"] = store_report
    if args.format == "json":
        print(json.dumps(report, indent=2, default=str))
    else:
        print(_status_table(report))
    return EXIT_CLEAN


def _status_table(report: dict[str, Any]) -> str:
    lines = [f"workers ({len(report['workers'])} live):"]
    for worker in report["workers"]:
        held = ",".join(str(n) for n in worker["partitions"]) or "-"
        lines.append(
            f"  {worker['id']:<24} alive, heartbeat {worker['heartbeat_age_s']} s ago, "
            f"pid {worker.get('pid')} on {worker.get('host')}, partitions {held}"
        )
    lines.append("partitions:")
    lines.append(f"  {'n':>3}  {'owner':<24} {'pending':>9} {'unacked':>9}")
    for part in report["partitions"]:
        owner = part["owner"] or "(none)"
        lines.append(
            f"  {part['partition']:>3}  {owner:<24} {part['pending']:>9} {part['ack_pending']:>9}"
        )
    ingress = report["ingress"]
    if ingress is not None:
        lines.append(
            f"ingress lag: {ingress['pending']} pending, {ingress['ack_pending']} unacknowledged"
        )
    vault = report["vault"]
    if vault:
        sizes = ", ".join(f"{k} {v}" for k, v in vault.items() if not isinstance(v, dict))
        lines.append(f"vault: {sizes}")
    return "\n".join(lines)
