"""The analyzer as a gRPC service (``kubesentinel ai serve``): Score, ScoreStream and the
standard health service, over one Analyzer that keeps learning behind its poisoning guard.

One analyzer, one lock: the analyzer's state (rarity counts, rate minutes, weak signals) is
one stream's history, so batches are scored one at a time, in the order they arrive; the
threads only overlap network and (de)serialisation. Limits (``Limits``): the message size
(gRPC refuses a larger message, RESOURCE_EXHAUSTED), the events per message (the same status)
and the calls in flight (gRPC refuses the next, RESOURCE_EXHAUSTED). A bad event costs its own
slot an ``error``; an unexpected failure of a batch is retried event by event, so it costs
only the events that fail again.

The service names of the .proto are registered by hand (``method_handlers_generic_handler``)
rather than with protoc's ``_pb2_grpc`` module, whose code refuses to run with a grpcio older
than the generator: only the messages are generated (ai/proto).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from kubesentinel.ai.proto import SERVICE, messages
from kubesentinel.errors import ServiceError

if TYPE_CHECKING:
    import grpc
    from grpc_health.v1.health import HealthServicer

    from kubesentinel.ai.analyzer import Analyzer
    from kubesentinel.models.anomaly_score import Scored
    from kubesentinel.models.event import Event

__all__ = ["METHODS", "Decoder", "Limits", "Running", "TLSFiles", "check_listen", "start"]

METHODS: Final = ("Score", "ScoreStream")
GRACE_S: Final = 5.0  # calls in flight may finish within this on stop

# Turns a request's events into analyzer Events, one per slot, in order; a str is why that
# slot's event cannot be scored. Injected by the CLI: parsing Falco JSON is the runtime
# layer's, and ai/ imports only models.
Decoder = Callable[[Sequence[Any]], "list[Event | str]"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_events: int = 4096  # per message; memory grows ~15 MB per 1,000 events decoded
    max_message_bytes: int = 8 << 20  # Falco alerts are ~1-2 KiB: 4,096 fit
    max_concurrency: int = 16  # calls in flight, streams included


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """PEM contents. With ``client_ca``, clients must present a certificate it signed."""

    cert: bytes
    key: bytes
    client_ca: bytes | None = None


def check_listen(listen: str, *, tls: bool, allow_insecure: bool) -> tuple[str, int]:
    """(host, port) of HOST:PORT ([::1]:PORT for IPv6); plaintext beyond loopback is refused
    unless ``allow_insecure``: the service has no other authentication, so it fails closed."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ServiceError(
            f"--listen {listen!r} is not HOST:PORT",
            hint="e.g. --listen 127.0.0.1:50051 or --listen [::]:50051",
        )
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not tls and not allow_insecure and not _loopback(bare):
        raise ServiceError(
            f"refusing to serve on {listen} without TLS: anyone who reaches it could read "
            "and poison the model",
            hint="give --tls-cert and --tls-key (and --tls-client-ca to require client "
            "certificates), listen on 127.0.0.1, or accept the risk with --allow-insecure",
        )
    return bare, int(port_text)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


class AnalyzerService:
    """Scores requests with one analyzer; the gRPC handlers are thin wrappers over
    ``score_request``."""

    def __init__(self, analyzer: Analyzer, decode: Decoder, limits: Limits) -> None:
        self.analyzer = analyzer
        self.decode = decode
        self.limits = limits
        self.lock = threading.Lock()
        self._pb = messages()

    def score_request(self, request: Any) -> Any:
        pb = self._pb
        events = request.events
        with self.lock:
            decoded = self.decode(events)
            good = [e for e in decoded if not isinstance(e, str)]
            scored = iter(self._score(good))
        threshold = self.analyzer.threshold
        out = []
        for item in decoded:
            if isinstance(item, str):
                out.append(pb.Score(error=item))
                continue
            result = next(scored)
            if isinstance(result, str):
                out.append(pb.Score(error=result, workload=item.workload.key, event_id=item.id))
                continue
            out.append(
                pb.Score(
                    score=result.score,
                    anomalous=result.score >= threshold,
                    reasons=result.reasons,
                    workload=item.workload.key,
                    bits=result.bits,
                    event_id=item.id,
                )
            )
        return pb.ScoreResponse(scores=out)

    def _score(self, events: list[Event]) -> list[Scored | str]:
        try:
            return list(self.analyzer.score_batch(events))
        except Exception:  # a bug met by some event: find it, keep the others' scores
            return [self._score_one(event) for event in events]

    def _score_one(self, event: Event) -> Scored | str:
        try:
            return self.analyzer.score(event)
        except Exception as exc:
            return f"KS-E060 internal error while scoring: {type(exc).__name__}: {exc}"[:300]

    # -- gRPC handlers --------------------------------------------------------------------
    # Named as the .proto names the methods.
    def Score(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check(request, context)
        return self.score_request(request)

    def ScoreStream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            self._check(request, context)
            yield self.score_request(request)

    def _check(self, request: Any, context: grpc.ServicerContext) -> None:
        import grpc

        if len(request.events) > self.limits.max_events:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{len(request.events)} events in one message; at most "
                f"{self.limits.max_events} (split the batch)",
            )


@dataclass(slots=True)
class Running:
    """A started server: its bound port, and a graceful stop."""

    server: grpc.Server
    health: HealthServicer
    port: int

    def stop(self, grace_s: float = GRACE_S) -> None:
        """NOT_SERVING to health checks, refuse new calls, let those in flight finish."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def start(
    service: AnalyzerService, host: str, port: int, *, tls: TLSFiles | None = None
) -> Running:
    """Listen on host:port (0: any free port) and serve; ServiceError when it cannot bind."""
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    pb = service._pb
    limits = service.limits
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=limits.max_concurrency, thread_name_prefix="ai"),
        maximum_concurrent_rpcs=limits.max_concurrency,
        options=[
            ("grpc.max_receive_message_length", limits.max_message_bytes),
            ("grpc.max_send_message_length", limits.max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share
        ],
    )
    handlers = {
        "Score": grpc.unary_unary_rpc_method_handler(
            service.Score,
            request_deserializer=pb.ScoreRequest.FromString,
            response_serializer=pb.ScoreResponse.SerializeToString,
        ),
        "ScoreStream": grpc.stream_stream_rpc_method_handler(
            service.ScoreStream,
            request_deserializer=pb.ScoreRequest.FromString,
            response_serializer=pb.ScoreResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.key, tls.cert)],
                root_certificates=tls.client_ca,
                require_client_auth=tls.client_ca is not None,
            )
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # grpcio raises here when it cannot bind
        raise ServiceError(f"cannot listen on {address}: {exc}") from None
    if not bound:
        raise ServiceError(f"cannot listen on {address}: the address is in use or not local")
    server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    checker.set("", serving)
    checker.set(SERVICE, serving)
    return Running(server, checker, bound)
