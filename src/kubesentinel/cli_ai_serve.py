"""``kubesentinel ai serve``: the analyzer as a gRPC service (ai/service.py, docs/ai.md).

Here rather than in ai/: the service's events are Falco JSON, parsed and mapped to workloads
by the monitor's own parser and enricher (runtime/), which ai/ does not import. grpc is
imported only when this command runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesentinel.config import Config
from kubesentinel.errors import UsageError

if TYPE_CHECKING:
    from kubesentinel.ai.service import TLSFiles
    from kubesentinel.models.event import Event


def add_serve(sub: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve", parents=parents, help="serve a model over gRPC (Score, ScoreStream, health)"
    )
    serve.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="address to listen on; beyond loopback only with TLS or --allow-insecure",
    )
    serve.add_argument("--model", metavar="PATH", help="the model (default: ai.model_path)")
    serve.add_argument("--threshold", type=float, metavar="T", help="default: ai.threshold")
    serve.add_argument("--tls-cert", metavar="PEM", help="server certificate (chain)")
    serve.add_argument("--tls-key", metavar="PEM", help="its private key")
    serve.add_argument(
        "--tls-client-ca",
        metavar="PEM",
        help="require client certificates signed by this CA (mutual TLS)",
    )
    serve.add_argument(
        "--allow-insecure",
        action="store_true",
        help="serve plaintext beyond loopback (no authentication: anyone reaching the port "
        "can read scores and feed the model)",
    )
    serve.add_argument("--no-learn", action="store_true", help="score only, learn nothing")
    serve.add_argument(
        "--save-model",
        metavar="PATH",
        help="on stop, write the model with what it kept learning here",
    )
    serve.add_argument(
        "--max-concurrency",
        type=int,
        default=16,
        metavar="N",
        help="calls in flight, streams included; more are refused (default: 16)",
    )
    serve.add_argument(
        "--max-events",
        type=int,
        default=4096,
        metavar="N",
        help="events per message; a larger message is refused (default: 4096)",
    )
    serve.add_argument(
        "--cluster",
        default="default",
        metavar="NAME",
        help="cluster label of events sent without a workload, as the monitor's --cluster",
    )
    serve.set_defaults(handler=_serve)


class FalcoDecoder:
    """Request events to analyzer Events: the monitor's parser and enricher, then the
    workload the client mapped the alert to, when it sent one (it may know owners that the
    alert's fields do not name). A slot that does not parse gets its KS-E031 reason."""

    def __init__(self, cluster: str) -> None:
        from kubesentinel.runtime.enrich import Enricher

        self.enricher = Enricher(cluster)

    def __call__(self, events: Sequence[Any]) -> list[Event | str]:
        from kubesentinel.models.event import Workload
        from kubesentinel.runtime.parse import parse_batch
        from kubesentinel.runtime.sources.interface import RawAlert

        raws = [
            RawAlert(e.falco_json, e.origin or f"request[{i}]", e.received_ns)
            for i, e in enumerate(events)
        ]
        parsed, rejected = parse_batch(raws)
        out: list[Event | str] = []
        bad = {r.index: r for r in rejected}
        enriched = iter(self.enricher.enrich(parsed))
        for i, wire in enumerate(events):
            reason = bad.get(i)
            if reason is not None:
                out.append(f"KS-E031 malformed Falco alert from {reason.origin}: {reason.reason}")
                continue
            event = next(enriched)
            if wire.HasField("workload"):
                w = wire.workload
                event.workload = Workload(w.cluster, w.namespace, w.kind, w.name)
            out.append(event)
        return out


def _tls(args: argparse.Namespace) -> TLSFiles | None:
    from kubesentinel.ai.service import TLSFiles

    if args.tls_cert is None and args.tls_key is None:
        if args.tls_client_ca is not None:
            raise UsageError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise UsageError("--tls-cert and --tls-key go together")
    ca = _read(args.tls_client_ca, "--tls-client-ca") if args.tls_client_ca else None
    return TLSFiles(_read(args.tls_cert, "--tls-cert"), _read(args.tls_key, "--tls-key"), ca)


def _read(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror}") from None


def _serve(args: argparse.Namespace, config: Config) -> int:
    from kubesentinel.ai.modelfile import load_analyzer, refuse_pickle, save_analyzer
    from kubesentinel.ai.proto import require_grpc
    from kubesentinel.ai.service import AnalyzerService, Limits, check_listen, start

    require_grpc()
    threshold = config.ai.threshold if args.threshold is None else args.threshold
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be within [0, 1], got {threshold}")
    if args.max_concurrency < 1 or args.max_events < 1:
        raise UsageError("--max-concurrency and --max-events must be at least 1")
    tls = _tls(args)
    host, port = check_listen(args.listen, tls=tls is not None, allow_insecure=args.allow_insecure)
    model = Path(args.model or config.ai.model_path)
    save_to = Path(args.save_model) if args.save_model else None
    if save_to is not None:
        refuse_pickle(save_to)
    analyzer = load_analyzer(model, threshold)
    analyzer.learning = not args.no_learn
    limits = Limits(max_events=args.max_events, max_concurrency=args.max_concurrency)
    service = AnalyzerService(analyzer, FalcoDecoder(args.cluster), limits)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    running = start(service, host, port, tls=tls)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"kubesentinel: serving {model} on {shown}:{running.port} "
        f"({'mutual TLS' if tls and tls.client_ca else 'TLS' if tls else 'plaintext'}, "
        f"threshold {threshold}, learning {'off' if args.no_learn else 'on'})",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(1.0):
        pass
    running.stop()
    if save_to is not None:
        with service.lock:
            save_analyzer(analyzer, save_to, {"continued_from": str(model)})
    print("kubesentinel: stopped", file=sys.stderr, flush=True)
    return 0
