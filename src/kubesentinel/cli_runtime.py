"""Runtime commands of the CLI: `monitor`, `incidents list`, `incidents show`, `simulate`.

Kept apart from cli.py so each stays short; like cli.py, only this module prints.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesentinel.config import Config
from kubesentinel.errors import UsageError

if TYPE_CHECKING:
    from kubesentinel.models import Priority, Severity
    from kubesentinel.models.posture import Posture
    from kubesentinel.reporting.background import IncidentReporter
    from kubesentinel.runtime.anomaly import AnomalyStage
    from kubesentinel.runtime.correlate import Correlator
    from kubesentinel.runtime.enrich import Enricher
    from kubesentinel.runtime.identity import OwnerLookup
    from kubesentinel.runtime.metrics import Metrics
    from kubesentinel.runtime.store.interface import VaultStore
    from kubesentinel.vault.policy import Policy
    from kubesentinel.vault.schedule import PruneSchedule

EXIT_CLEAN = 0
EXIT_TAMPERED = 1  # incidents show: what it read does not match the vault's seals
LIST_LIMIT = 50  # incidents list: the newest this many unless --limit says otherwise
CONTEXT_SHOWN = 20  # incidents show: context events listed unless --all
DB_NAME = "kubesentinel.db"
DEAD_LETTER_NAME = "dead-letter.jsonl"
OWNER_TTL_S = 300.0
# The HTTP receiver, the pipeline and the store acknowledgements share the GIL; Python's
# default 5 ms switch interval would add up to that much to each hand-over under load.
SWITCH_INTERVAL_S = 0.0005
# simulate --hours: a month at ~1 alert/s is already millions of alerts; more would only
# fill the disk. The least (simulate.constants.MIN_HOURS) is checked where simulate loads.
MAX_HOURS = 744.0
STORE_HELP = (
    f"SQLite file or postgresql:// URL (default: forensics.storage_url, else "
    f"forensics.storage_path/{DB_NAME})"
)


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
    monitor.add_argument("--namespace", action="append", default=[], metavar="NS",
                         help="only alerts from this namespace; repeatable (default: "
                         "all)")  # fmt: skip
    monitor.add_argument("--deployment", action="append", default=[], metavar="NAME",
                         help="only alerts from the pods of this Deployment; repeatable "
                         "(default: all workloads)")  # fmt: skip
    monitor.add_argument("--cluster", default="default", metavar="NAME",
                         help="label for this cluster's events (multi-cluster setups)")  # fmt: skip
    monitor.add_argument("--min-priority", default="debug", metavar="PRIORITY",
                         help="drop alerts below this Falco priority (default: debug)")  # fmt: skip
    monitor.add_argument("--posture", metavar="FILE",
                         help="`kubesentinel scan --format json` output")  # fmt: skip
    monitor.add_argument("--incident-gap", type=float, metavar="SECONDS",
                         help="close an incident after this long without a new signal "
                         "(default: runtime.incident_gap, 300)")  # fmt: skip
    monitor.add_argument("--incident-max-duration", type=float, metavar="SECONDS",
                         help="longest incident; a longer episode continues as a new, linked "
                         "one (default: runtime.incident_max_duration, 3600)")  # fmt: skip
    # Deprecated name of --incident-gap: still accepted, with a notice, and not advertised.
    monitor.add_argument("--window", type=float, help=argparse.SUPPRESS)
    monitor.add_argument("--store", metavar="PATH|URL", help="SQLite file or postgresql:// URL "
                         "(default: forensics.storage_url, else "
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
    monitor.add_argument("--log-format", default="text", choices=("text", "json"),
                         help="log lines as text or one JSON object per line")  # fmt: skip
    _add_ai_options(monitor)
    monitor.set_defaults(handler=_monitor)

    incidents = commands.add_parser("incidents", help="read incidents from the store")
    sub = incidents.add_subparsers(dest="incidents_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="list incidents, newest first", parents=parents)
    listing.add_argument("--format", "-f", default="table", choices=("table", "json"),
                         help="output format (default: table)")  # fmt: skip
    listing.add_argument("--limit", type=_limit_arg, default=LIST_LIMIT, metavar="N",
                         help=f"show at most N incidents (default: {LIST_LIMIT}; 0: all of "
                         "them); a note on stderr says when more matched")  # fmt: skip
    listing.add_argument("--namespace", metavar="NS",
                         help="only incidents of workloads in this namespace")  # fmt: skip
    listing.add_argument("--since", type=_since_arg, metavar="WHEN",
                         help="only incidents with a signal since WHEN: an RFC 3339 time "
                         "(2026-01-01T09:00:00Z) or a duration ago (90s, 30m, 2h, 7d)")  # fmt: skip
    listing.add_argument("--severity", type=_min_severity_arg, metavar="LEVEL",
                         help="minimum severity: low, medium, high or critical")  # fmt: skip
    listing.add_argument("--status", choices=("open", "closed"),
                         help="only open or only closed incidents (default: both)")  # fmt: skip
    listing.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    listing.set_defaults(handler=_incidents_list)
    show = sub.add_parser("show", help="one incident with its events", parents=parents)
    show.add_argument("incident_id", metavar="ID", help="the incident's id, as listed")
    show.add_argument("--format", "-f", default="table", choices=("table", "json"),
                      help="output format (default: table)")  # fmt: skip
    show.add_argument("--all", action="store_true",
                      help="list every context event (default: the first "
                      f"{CONTEXT_SHOWN})")  # fmt: skip
    show.add_argument("--store", metavar="PATH|URL", help=STORE_HELP)
    show.set_defaults(handler=_incidents_show)

    simulate = commands.add_parser(
        "simulate", help="write a realistic Falco stream of a cluster", parents=parents
    )
    simulate.add_argument("--out", required=True, metavar="DIR",
                          help="directory to write falco.jsonl, labels.json, manifests/ and "
                          "README.md into (created; files there are replaced)")  # fmt: skip
    simulate.add_argument("--seed", type=int, default=1, metavar="N",
                          help="random seed: the same seed writes the same bytes "
                          "(default: 1)")  # fmt: skip
    simulate.add_argument("--hours", type=_hours_arg, default=1.0, metavar="H",
                          help="simulated time in hours, from a quarter of an hour (the attacks "
                          f"need it) to {MAX_HOURS:g} (default: 1)")  # fmt: skip
    simulate.set_defaults(handler=_simulate)


def _add_ai_options(monitor: argparse.ArgumentParser) -> None:
    monitor.add_argument("--model", metavar="PATH",
                         help="score events in-process with this model (.json or .json.zst; "
                         "default: ai.endpoint when set, else ai.model_path when it holds a "
                         "model)")  # fmt: skip
    monitor.add_argument("--no-ai", action="store_true",
                         help="no anomaly scoring, whatever the config says")  # fmt: skip
    monitor.add_argument("--save-model", metavar="PATH",
                         help="write the in-process model, with what it learned from the "
                         "stream, to PATH when the monitor stops (default: never)")  # fmt: skip


def _open_store(config: Config, given: str | None) -> VaultStore:
    from kubesentinel.runtime.store.open import open_store, signing_key_for, store_location

    # SQLite: creates its directory 0700 and the file 0600; the signing key on the first write.
    location = store_location(config, given)
    return open_store(location, signing_key=signing_key_for(config, location))


def _monitor(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.bridge import load_posture_file
    from kubesentinel.runtime import logs, pipeline
    from kubesentinel.runtime.deadletter import DeadLetter
    from kubesentinel.runtime.filters import EventFilter
    from kubesentinel.runtime.metrics import Metrics
    from kubesentinel.runtime.sources.http_options import options_from_args
    from kubesentinel.vault.retention import policy_from_config

    min_priority = _check_monitor_args(args)
    logs.configure(args.log_format)
    # The store, its WAL and the dead-letter file hold command lines and other evidence:
    # private to this user (files 0600, directories 0700).
    os.umask(0o077)
    # Check the inputs before creating anything on disk: posture file, then source, then store.
    posture: Posture | None = (
        load_posture_file(args.posture, cluster=args.cluster, rules_path=config.static.rules_path)
        if args.posture
        else None
    )
    # A bad retention policy stops the monitor here, before it creates anything (exit 2).
    policy = policy_from_config(config.forensics)
    # So does a bad model (exit 2); no model at all is scoring off, said once in the log.
    anomaly = _anomaly_stage(args, config)
    metrics = Metrics()
    uri = args.source or config.runtime.falco_socket
    http = options_from_args(args, uri, os.environ)
    # Signals are handled from here on: a SIGTERM while starting still ends with a summary.
    stop = threading.Event()
    opened: list[Any] = []
    _stop_on_signals(stop, opened)
    source = _open_monitor_source(args, uri, config, metrics, http)
    opened.append(source)
    if stop.is_set():
        source.close()
    logs.log.info("%s %s", "listening on" if source.live else "reading", source.name)
    try:
        store = _open_store(config, args.store)
    except BaseException:
        source.close()  # an in-process scorer has nothing to release; --save-model is not due
        raise
    posture = _stored_posture(store, posture, args.cluster)
    dead_letter_path = _dead_letter_path(args, config)
    dead_letter = DeadLetter(dead_letter_path)
    workers = min(args.workers or config.runtime.workers, os.cpu_count() or 1)
    _tune_gc()
    # Retention runs, and the reports of reporting.on_incident: threads of their own.
    schedule, reporter = (
        _prune_schedule(store, config, policy, dead_letter_path, metrics),
        _incident_reporter(store, config),
    )
    failed = True
    try:
        enricher, correlator = _stages(args, config, source, store, posture, anomaly=anomaly)
        if args.partitions is not None:
            workers = 1  # one process: the correlator changes hands between batches
        summary = pipeline.run(
            source,
            enricher=enricher,
            correlator=correlator,
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
            anomaly=anomaly,
            on_reportable=None if reporter is None else reporter.notify,
        )
        failed = False
    finally:
        source.close()
        dead_letter.close()
        _close_store(store, quiet=failed, schedule=schedule, anomaly=anomaly, reporter=reporter)
    report = summary.as_dict(refused=int(metrics.snapshot().get("refused", 0)))
    report["dead_letter"] = dict(dead_letter.counts)  # malformed alerts per reason
    _print_summary(report, args.format, dead_letter_path)
    return EXIT_CLEAN


def _open_monitor_source(
    args: argparse.Namespace, uri: str, config: Config, metrics: Metrics, http: Any
) -> Any:
    """The monitor's source: a scale-out worker's partitions (--partitions), else ``uri``."""
    from kubesentinel.runtime.sources import open_source

    if args.partitions is not None:  # docs/scale-out.md
        from kubesentinel.cli_scale import partitioned_source

        return partitioned_source(args, uri, config)
    return open_source(
        uri,
        queue_size=config.runtime.buffer_size,
        queue_bytes=config.runtime.buffer_bytes,
        metrics=metrics,
        follow=args.follow,
        token=http.token,
        tls=http.tls,
    )


def _stages(
    args: argparse.Namespace,
    config: Config,
    source: Any,
    store: VaultStore,
    posture: Posture | None,
    *,
    anomaly: AnomalyStage | None,
) -> tuple[Enricher, Correlator]:
    """The enricher and correlator: a scale-out worker's hand over partitions' incidents."""
    from kubesentinel.runtime.correlate import Correlator
    from kubesentinel.runtime.enrich import Enricher

    if args.partitions is not None:
        from kubesentinel.cli_scale import wire_worker

        return wire_worker(
            source, store, _incident_limits(args, config), posture=posture,
            cluster=args.cluster, lookup=_owner_lookup(args), anomaly=anomaly,
        )  # fmt: skip
    enricher = Enricher(cluster=args.cluster, lookup=_owner_lookup(args))
    return enricher, Correlator(*_incident_limits(args, config), posture=posture)


def _dead_letter_path(args: argparse.Namespace, config: Config) -> Path:
    if args.dead_letter:
        return Path(args.dead_letter)
    return Path(config.forensics.storage_path) / DEAD_LETTER_NAME


def _anomaly_stage(args: argparse.Namespace, config: Config) -> AnomalyStage | None:
    """The scoring stage with its scorer (ai/scorer.py says which), or None: scoring off."""
    from kubesentinel.ai.scorer import open_scorer
    from kubesentinel.runtime import logs
    from kubesentinel.runtime.anomaly import AnomalyStage

    if args.no_ai:
        if args.model or args.save_model:
            raise UsageError("--no-ai contradicts --model and --save-model")
        logs.log.info("anomaly scoring off (--no-ai)")
        return None
    if (
        args.model
        and args.save_model
        and Path(args.model).resolve() == Path(args.save_model).resolve()
    ):
        # Allowed, but said: the trained model is replaced by what this run learns.
        logs.log.warning(
            "--save-model overwrites the model given with --model when the monitor stops"
        )
    scorer = open_scorer(config, model=args.model, save_to=args.save_model)
    if scorer is None:
        return None
    gap_s = _incident_limits(args, config)[0]  # incidents are held with their context window
    return AnomalyStage(scorer, config.ai.threshold, int(gap_s * 1_000_000_000))


def _incident_reporter(store: VaultStore, config: Config) -> IncidentReporter | None:
    """The reports of ``reporting.on_incident``, written from a thread of their own."""
    if not config.reporting.on_incident:
        return None
    from kubesentinel.reporting.background import IncidentReporter

    return IncidentReporter(
        store.location,
        config.reporting.formats,
        config.reporting.output_path,
        rules_path=config.static.rules_path,
    )


def _prune_schedule(
    store: VaultStore, config: Config, policy: Policy, dead_letter: Path, metrics: Metrics
) -> PruneSchedule | None:
    """The monitor's retention runs (vault/schedule.py), unless forensics.prune_interval_s
    is 0. On a PostgreSQL vault every monitor prunes on its own schedule (the chain lock runs
    their transactions one at a time)."""
    from kubesentinel.vault.schedule import PruneSchedule

    forensics = config.forensics
    if forensics.prune_interval_s <= 0:
        return None
    schedule = PruneSchedule(
        store.location,
        store.signing_key,
        policy,
        interval_s=forensics.prune_interval_s,
        max_bytes=forensics.max_size_mb * 1024 * 1024,
        dead_letter=dead_letter,
        metrics=metrics,
    )
    schedule.start()
    return schedule


def _stored_posture(store: VaultStore, given: Posture | None, cluster: str) -> Posture | None:
    """The posture given (saved for later runs), else the one a previous run saved."""
    if given is not None:
        store.save_posture(given)
        return given
    posture = store.load_posture()
    if posture is not None and posture.cluster != cluster:
        print(f"kubesentinel: notice: the stored posture describes cluster "
              f"{posture.cluster!r}, not {cluster!r}: no workload here gets it",
              file=sys.stderr)  # fmt: skip
    return posture


def _close_store(
    store: VaultStore,
    *,
    quiet: bool,
    schedule: PruneSchedule | None = None,
    anomaly: AnomalyStage | None = None,
    reporter: IncidentReporter | None = None,
) -> None:
    """Close the store; a failure here (a full disk at the last checkpoint) is one line, not a
    traceback, and none after the error that stopped the monitor: every commit is already in
    the WAL, which the next open reads. Then the scorer closes (writing --save-model), and the
    incident reports still queued are written (after the store's last checkpoint, which they
    then name)."""
    from kubesentinel.errors import StoreError
    from kubesentinel.runtime import logs

    if schedule is not None:
        schedule.stop()  # after its transaction in progress, if any
    try:
        store.close()
    except StoreError as exc:
        if not quiet:
            logs.log.error("%s", exc)
    if anomaly is not None:
        anomaly.close()
    if reporter is not None:
        reporter.close()


def _check_monitor_args(args: argparse.Namespace) -> Priority:
    """Usage errors before anything starts; returns the parsed --min-priority."""
    from kubesentinel.models import Priority

    try:
        min_priority = Priority.parse(args.min_priority)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    gap_option = "--incident-gap"
    if args.window is not None:
        print("kubesentinel: warning: --window is deprecated; use --incident-gap",
              file=sys.stderr)  # fmt: skip
        if args.incident_gap is None:
            args.incident_gap, gap_option = args.window, "--window"
    for option, value in ((gap_option, args.incident_gap),
                          ("--incident-max-duration", args.incident_max_duration)):  # fmt: skip
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{option} must be a number of seconds greater than 0")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.follow and args.until_eof:
        raise UsageError("--follow and --until-eof contradict each other")
    return min_priority


def _incident_limits(args: argparse.Namespace, config: Config) -> tuple[float, float]:
    """(gap, max duration) in seconds: the options, else the config."""
    gap = args.incident_gap
    longest = args.incident_max_duration
    return (
        config.runtime.incident_gap if gap is None else gap,
        config.runtime.incident_max_duration if longest is None else longest,
    )


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
    if report["events_scored"]:
        print(
            f"{report['events_scored']} events scored, {report['anomalies']} anomalous; "
            f"{report['events_learned']} learned, {report['events_held']} not learned "
            "(inside an incident)."
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
    """See ``runtime.gc_tuning``; the switch interval is for the source threads."""
    from kubesentinel.runtime.gc_tuning import tune_for_throughput

    tune_for_throughput()
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
    from kubesentinel.runtime.incident_view import render_incidents, tampering_lines

    store = open_existing_store(config, args.store)
    filters: dict[str, Any] = {
        "namespace": args.namespace,
        "since_ns": args.since,
        "min_severity": args.severity,
        "status": args.status,
    }
    limit = args.limit or None  # 0: no limit
    try:
        incidents = store.list_incidents(limit=limit, **filters)
        cut = limit is not None and len(incidents) == limit
        total = store.count_incidents(**filters) if cut else len(incidents)
        # Each incident listed against the state its segment sealed, and the chain.
        integrity = store.verify_incident_states([incident.id for incident in incidents])
    finally:
        store.close()
    sys.stdout.write(render_incidents(incidents, args.format))
    # stderr: the JSON on stdout stays a plain list.
    if total > len(incidents):
        print(f"kubesentinel: showing {len(incidents)} of {total} incidents (--limit N for "
              "more, --limit 0 for all)", file=sys.stderr)  # fmt: skip
    if not integrity.ok:
        sys.stderr.write(tampering_lines(integrity))
        return EXIT_TAMPERED
    return EXIT_CLEAN


def _incidents_show(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.runtime.incident_view import render_incident

    store = open_existing_store(config, args.store)
    try:
        incident = store.get_incident(args.incident_id)
        if incident is None:
            raise UsageError(
                f"no incident {args.incident_id!r} in {store.name}",
                hint="`kubesentinel incidents list` shows the incidents and their ids",
            )
        # Check what is shown against the vault's seals before reading it.
        integrity = store.verify_incident(incident.id)
        limit = None if args.all else CONTEXT_SHOWN
        events = store.stored_events_of(incident.id, context_limit=limit)
        next_id = store.next_of(incident.id)
    finally:
        store.close()
    sys.stdout.write(
        render_incident(incident, events, args.format, next_id=next_id, integrity=integrity)
    )
    return EXIT_CLEAN if integrity.ok else EXIT_TAMPERED


def open_existing_store(config: Config, given: str | None) -> VaultStore:
    """The store for the incident and vault commands, which never create one."""
    from kubesentinel.runtime.store.open import open_existing

    return open_existing(config, given)


def _limit_arg(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of incidents (a whole number; 0 for no limit)"
        )
    return limit


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _since_arg(text: str) -> int:
    """ns since the epoch, from an RFC 3339 time or a duration before now (``2h``, ``30m``)."""
    import time
    from datetime import datetime

    duration = _DURATION.fullmatch(text.strip())
    if duration:
        seconds = float(duration.group(1)) * _UNIT_S[duration.group(2)]
        return time.time_ns() - int(seconds * 1_000_000_000)
    # fromisoformat takes microseconds at most: cut a nanosecond fraction down to them.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text.strip())
    try:
        when = datetime.fromisoformat(trimmed)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an RFC 3339 time with its offset (2026-01-01T09:00:00Z) nor "
            "a duration (90s, 30m, 2h, 7d)"
        )
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def _min_severity_arg(text: str) -> Severity:
    from kubesentinel.models import Severity

    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hours_arg(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not 0 < hours <= MAX_HOURS:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a number of hours above 0 and at most {MAX_HOURS:g}"
        )
    return hours


def _simulate(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.runtime.simulate import simulate, write_simulation
    from kubesentinel.runtime.simulate.constants import MIN_HOURS

    if args.hours < MIN_HOURS:
        raise UsageError(
            f"--hours {args.hours:g} is too short: the simulated attacks need at least "
            f"{MIN_HOURS:g} hours"
        )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError("--out names a file; give a directory", file=args.out)
    try:
        counts = write_simulation(simulate(seed=args.seed, hours=args.hours), out)
    except OSError as exc:
        raise UsageError(
            f"--out: cannot write the simulation: {exc.strerror or exc}",
            file=exc.filename or args.out,
            hint="give a directory you can write to",
        ) from None
    print(json.dumps(counts, indent=2))
    return EXIT_CLEAN
