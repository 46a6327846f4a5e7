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
"""

from __future__ import annotations

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

# The server's memory grows with the batch it decodes at once (bench/ai_serve_bench.py: peak
# PSS 38 MB at 256 events, 52 MB at 1,000, 96 MB at 4,096); throughput does not (~37,000/s).
MAX_EVENTS_PER_CALL: Final = 512
MAX_BYTES_PER_CALL: Final = 4 << 20  # half the server's default message limit
_HINT: Final = "check ai.endpoint, and that `kubesentinel ai serve` runs there and is reachable"


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
            raise ServiceError("a client certificate needs its key, and a key its certificate")
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
            for s in response.scores:
                if s.error:
                    out.append(Scored(0.0, (f"not scored by {self.endpoint}: {s.error}",)))
                else:
                    out.append(Scored(s.score, tuple(s.reasons), s.bits))
        return out

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RemoteScorer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _score(self, chunk: list[Any]) -> Any:
        import grpc

        try:
            return self._call(self._pb.ScoreRequest(events=chunk), timeout=self.timeout_s)
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
