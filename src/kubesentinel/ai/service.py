"""The analyzer as a gRPC service (``kubesentinel ai serve``): Score, ScoreStream, Settle and
the standard health service, over one Analyzer that keeps learning behind its poisoning guard.

Learning in step with a caller's incidents: a Score with ``defer_learning`` (the monitor's
RemoteScorer) learns nothing yet; its response carries a ``learn_token``. Once the caller has
correlated the batch, a Settle holds its incidents' spans and names the token: only then are
that call's events learned, those inside a held span not. So no event inside an incident is
learned, as in process. Unsettled calls are bounded (``Limits.pending_calls``, and
``Limits.pending_s`` of age): one pushed out is dropped unlearned, which is the safe side.

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
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from kubesentinel.ai.proto import SERVICE, messages
from kubesentinel.errors import ServiceError

if TYPE_CHECKING:
    import grpc
    from grpc_health.v1.health import HealthServicer

    from kubesentinel.ai.analyzer import Analyzer, Deferred
    from kubesentinel.models.anomaly_score import Scored
    from kubesentinel.models.event import Event

__all__ = ["METHODS", "Decoder", "Limits", "Running", "TLSFiles", "check_listen", "start"]

METHODS: Final = ("Score", "ScoreStream", "Settle")
GRACE_S: Final = 5.0  # calls in flight may finish within this on stop

# Turns a request's events into analyzer Events, one per slot, in order; a str is why that
# slot's event cannot be scored. Injected by the CLI: parsing Falco JSON is the runtime
# layer's, and ai/ imports only models.
Decoder = Callable[[Sequence[Any]], "list[Event | str]"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_events: int = 4096  # per message; memory grows with the events decoded at once
    max_message_bytes: int = 8 << 20  # Falco alerts are ~1-2 KiB: 4,096 fit
    max_concurrency: int = 16  # calls in flight, streams included
    pending_calls: int = 64  # deferred calls awaiting their Settle (each <= max_events)
    pending_s: float = 60.0  # a deferred call not settled by then is dropped unlearned


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
        # learn_token -> (monotonic time of the call, what it would learn); oldest first.
        self._pending: dict[int, tuple[float, Deferred]] = {}

    def score_request(self, request: Any) -> Any:
        pb = self._pb
        events = request.events
        token = 0
        with self.lock:
            decoded = self.decode(events)
            good = [e for e in decoded if not isinstance(e, str)]
            held = self.analyzer.held_events
            results, deferred = self._score(good, defer=request.defer_learning)
            held = self.analyzer.held_events - held
            scored = iter(results)
            if request.defer_learning:
                token = self._keep(deferred)
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
        return pb.ScoreResponse(scores=out, learn_token=token, held=held)

    def settle_request(self, request: Any) -> Any:
        """Hold the request's spans, then learn its tokens' events outside every hold."""
        analyzer = self.analyzer
        with self.lock:
            for hold in request.holds:
                analyzer.hold(hold.workload, hold.start_ns, hold.end_ns)
            self._expire(time.monotonic())
            learned, held = analyzer.learned_events, analyzer.held_events
            unknown = 0
            for token in request.learn_tokens:
                kept = self._pending.pop(token, None)
                if kept is None:
                    unknown += 1
                    continue
                analyzer.learn_deferred(kept[1])
            learned = analyzer.learned_events - learned
            held = analyzer.held_events - held
        return self._pb.SettleResponse(learned=learned, held=held, unknown_tokens=unknown)

    def _keep(self, deferred: Deferred) -> int:
        """A token for a deferred call's events (0: nothing to learn); under the lock."""
        if not deferred:
            return 0
        self._expire(time.monotonic())
        pending = self._pending
        while len(pending) >= self.limits.pending_calls:
            del pending[next(iter(pending))]  # the oldest, unlearned
        token = secrets.randbits(63) or 1
        pending[token] = (time.monotonic(), deferred)
        return token

    def _expire(self, now: float) -> None:
        pending = self._pending
        while pending:
            token, (at, _) = next(iter(pending.items()))
            if now - at < self.limits.pending_s:
                break
            del pending[token]

    def _score(self, events: list[Event], *, defer: bool) -> tuple[list[Scored | str], Deferred]:
        """Scores, and with ``defer`` what they would learn (else learned already)."""
        analyzer = self.analyzer
        try:
            scores: list[Scored | str] = list(analyzer.score_batch(events, defer=defer))
            return scores, analyzer.take_deferred() if defer else []
        except Exception:  # a bug met by some event: find it, keep the others' scores
            analyzer.take_deferred()  # the failed batch's part: learn none of it
        scores, deferred = [], []
        for event in events:
            try:
                scores.append(analyzer.score_batch([event], defer=defer)[0])
            except Exception as exc:
                scores.append(
                    f"KS-E060 internal error while scoring: {type(exc).__name__}: {exc}"[:300]
                )
            if defer:
                deferred.extend(analyzer.take_deferred())
        return scores, deferred

    # -- gRPC handlers --------------------------------------------------------------------
    # Named as the .proto names the methods.
    def Score(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._check(request, context)
        return self.score_request(request)

    def ScoreStream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            self._check(request, context)
            yield self.score_request(request)

    def Settle(self, request: Any, context: grpc.ServicerContext) -> Any:
        import grpc

        if len(request.holds) + len(request.learn_tokens) > self.limits.max_events:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{len(request.holds)} holds and {len(request.learn_tokens)} tokens in one "
                f"message; at most {self.limits.max_events} together",
            )
        return self.settle_request(request)

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
        "Settle": grpc.unary_unary_rpc_method_handler(
            service.Settle,
            request_deserializer=pb.SettleRequest.FromString,
            response_serializer=pb.SettleResponse.SerializeToString,
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
