"""A client of ``kubesentinel ai serve``: scores the monitor's events on a remote analyzer
(``ai.endpoint``), with the same ``Scored`` results as the analyzer in process.

Endpoints: ``host:port`` (plaintext, or TLS when ``tls_ca`` is given), ``https://host:port``
(TLS; the system's roots unless ``tls_ca``), ``http://host:port`` (plaintext). Each event
travels as the Falco JSON the monitor received (``Event.raw``; an event built in code is
written as Falco JSON from its fields) with the workload the monitor mapped it to. Batches are
sent in calls of at most 512 events (the server's memory; a larger batch is scored as
consecutive batches, which the analyzer learns from a batch at a time). A call that fails
(unreachable, refused, timed out) raises ServiceError (KS-E062) naming the endpoint and
gRPC's status. An event the server could not score comes back as score 0.0 whose only reason
says why: the batch's other scores are kept.

It takes incident holds (``ai.scorer.Holds``) as the analyzer in process does: its Score calls
ask the server to defer learning, and ``settle`` sends the holds the monitor placed since, with
the calls' learn tokens, so the service learns nothing inside an incident either. A Settle that
fails is logged (at most once a minute) and its calls stay unlearned: the safe side. A server
without Settle (older than this client) learns at Score, as it always did; that is logged once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

from kubesentinel.ai.proto import SERVICE, messages, require_grpc
from kubesentinel.errors import ServiceError
from kubesentinel.models.anomaly_score import Scored

if TYPE_CHECKING:
    import grpc

    from kubesentinel.models.event import Event

__all__ = ["RemoteScorer"]

# The server's memory grows with the batch it decodes at once; throughput does not
# (bench/ai_serve_bench.py, figures in docs/performance.md).
MAX_EVENTS_PER_CALL: Final = 512
MAX_BYTES_PER_CALL: Final = 4 << 20  # half the server's default message limit
_HINT: Final = "check ai.endpoint, and that `kubesentinel ai serve` runs there and is reachable"
FAILURE_LOG_S: Final = 60.0  # at most one line a minute about failing Settle calls
MAX_HOLDS_PER_CALL: Final = 2048  # the server takes at most 4,096 holds and tokens a message

log = logging.getLogger("kubesentinel.ai")


class RemoteScorer:
    def __init__(
        self,
        endpoint: str,
        *,
        tls_ca: str | None = None,
        timeout_s: float = 10.0,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        require_grpc()
        import grpc

        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._pb = messages()
        target, secure = _target(endpoint)
        secure = secure or tls_ca is not None or tls_cert is not None
        if (tls_cert is None) != (tls_key is None):
            raise ServiceError(
                "a client certificate needs its key, and a key its certificate",
                hint="set both ai.tls_cert and ai.tls_key, or neither",
            )
        options = [
            ("grpc.max_send_message_length", 16 << 20),
            ("grpc.max_receive_message_length", 16 << 20),
        ]
        if secure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca, "CA"),
                private_key=_read(tls_key, "client key"),
                certificate_chain=_read(tls_cert, "client certificate"),
            )
            self._channel = grpc.secure_channel(target, credentials, options)
        else:
            self._channel = grpc.insecure_channel(target, options)
        self._call = self._channel.unary_unary(
            f"/{SERVICE}/Score",
            request_serializer=self._pb.ScoreRequest.SerializeToString,
            response_deserializer=self._pb.ScoreResponse.FromString,
        )
        self._settle_call = self._channel.unary_unary(
            f"/{SERVICE}/Settle",
            request_serializer=self._pb.SettleRequest.SerializeToString,
            response_deserializer=self._pb.SettleResponse.FromString,
        )
        self._tokens: list[int] = []  # learn tokens of Score calls not settled yet
        self._holds: list[Any] = []  # Hold messages placed since the last settle
        self._settles = True  # False once the server said it has no Settle
        self._failed_at = -FAILURE_LOG_S
        self._learned = 0  # as the server reported them
        self._held = 0

    def score_batch(self, events: Sequence[Event]) -> list[Scored]:
        """One Scored per event, in order."""
        out: list[Scored] = []
        for chunk in _chunks([self._wire(e) for e in events]):
            response = self._score(chunk)
            if len(response.scores) != len(chunk):
                raise ServiceError(
                    f"analyzer service at {self.endpoint} answered {len(response.scores)} "
                    f"scores for {len(chunk)} events",
                    hint="client and server versions differ?",
                )
            if response.learn_token:
                self._tokens.append(response.learn_token)
            self._held += response.held
            for s in response.scores:
                if s.error:
                    out.append(Scored(0.0, (f"not scored by {self.endpoint}: {s.error}",)))
                else:
                    out.append(Scored(s.score, tuple(s.reasons), s.bits))
        return out

    def hold(self, workload: str, start_ns: int, end_ns: int) -> None:
        hold = self._pb.Hold(workload=_utf8(workload), start_ns=start_ns, end_ns=end_ns)
        self._holds.append(hold)

    def settle(self) -> None:
        """Send the holds placed since the last settle, then have the server learn the
        Score calls made since (outside every hold). Never raises: a failure is logged and
        those calls stay unlearned."""
        holds, tokens = self._holds, self._tokens
        self._holds, self._tokens = [], []
        if not self._settles or not (holds or tokens):
            return
        import grpc

        # Holds first, tokens in the last message: a call is learned only after every hold.
        while holds or tokens:
            now, holds = holds[:MAX_HOLDS_PER_CALL], holds[MAX_HOLDS_PER_CALL:]
            last = not holds
            request = self._pb.SettleRequest(holds=now, learn_tokens=tokens if last else ())
            try:
                response = self._settle_call(request, timeout=self.timeout_s)
            except grpc.RpcError as exc:
                if isinstance(exc, grpc.Call) and exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                    self._settles = False
                    log.warning(
                        "the analyzer service at %s has no Settle (an older version): it "
                        "learns events as it scores them, incidents not held",
                        self.endpoint,
                    )
                    return
                self._log_failure(_error(self.endpoint, exc, self.timeout_s))
                return
            self._learned += response.learned
            self._held += response.held
            if last:
                return

    @property
    def learned_events(self) -> int:
        return self._learned

    @property
    def held_events(self) -> int:
        return self._held

    def _log_failure(self, error: ServiceError) -> None:
        at = time.monotonic()
        if at - self._failed_at >= FAILURE_LOG_S:
            self._failed_at = at
            log.error("analyzer service: Settle failed, those events stay unlearned: %s", error)

    def close(self) -> None:
        self.settle()
        self._channel.close()

    def __enter__(self) -> RemoteScorer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _score(self, chunk: list[Any]) -> Any:
        import grpc

        try:
            request = self._pb.ScoreRequest(events=chunk, defer_learning=self._settles)
            return self._call(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise _error(self.endpoint, exc, self.timeout_s) from None

    def _wire(self, event: Event) -> Any:
        w = event.workload
        return self._pb.Event(
            falco_json=event.raw or _falco_json(event),
            workload=self._pb.Workload(
                cluster=_utf8(w.cluster),
                namespace=_utf8(w.namespace),
                kind=_utf8(w.kind),
                name=_utf8(w.name),
            ),
            origin=_utf8(event.origin),
            received_ns=event.received_ns,
        )


def _target(endpoint: str) -> tuple[str, bool]:
    """(host:port, TLS?) of an endpoint."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        scheme, rest = "", endpoint
    if scheme not in ("", "http", "https"):
        raise ServiceError(
            f"analyzer endpoint {endpoint!r}: unknown scheme {scheme!r}",
            hint="host:port, https://host:port (TLS) or http://host:port",
        )
    target = rest.rstrip("/")
    host, colon, port = target.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ServiceError(
            f"analyzer endpoint {endpoint!r} is not host:port",
            hint="e.g. ai.endpoint: https://kubesentinel-ai.security.svc:50051",
        )
    return target, scheme == "https"


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ServiceError(f"cannot read the {what} {path}: {exc.strerror}") from None


def _error(endpoint: str, exc: grpc.RpcError, timeout_s: float) -> ServiceError:
    import grpc

    code = exc.code() if isinstance(exc, grpc.Call) else None
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
    if code is grpc.StatusCode.UNAVAILABLE:
        what = "is unreachable"
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        what = f"did not answer within {timeout_s:g} s"
    elif code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        what = "refused the call (busy, or the batch is too large)"
    else:
        what = "failed"
    name = code.name if code is not None else "error"
    return ServiceError(f"analyzer service at {endpoint} {what} ({name}: {details})", hint=_HINT)


def _chunks(wire: list[Any]) -> list[list[Any]]:
    """Consecutive runs within the per-call limits (a lone oversized event goes alone: the
    server then refuses that call, which names the problem)."""
    chunks: list[list[Any]] = []
    current: list[Any] = []
    size = 0
    for event in wire:
        n = len(event.falco_json) + 256
        if current and (len(current) >= MAX_EVENTS_PER_CALL or size + n > MAX_BYTES_PER_CALL):
            chunks.append(current)
            current, size = [], 0
        current.append(event)
        size += n
    if current:
        chunks.append(current)
    return chunks


def _utf8(text: str) -> str:
    """Protobuf strings are UTF-8: a lone surrogate is sent as its backslash escape."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode()


def _falco_json(event: Event) -> bytes:
    """The event as Falco writes an alert, for an Event that carries no bytes as received."""
    seconds, nanos = divmod(event.time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    doc = {
        "time": f"{stamp}.{nanos:09d}Z",
        "rule": event.rule,
        "priority": event.priority.label,
        "source": event.source,
        "output": event.output,
        "hostname": event.hostname,
        "tags": list(event.tags),
        "output_fields": dict(event.fields),
        "uuid": event.id,
    }
    return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS)
