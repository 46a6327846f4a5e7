"""`ai serve`'s gRPC service: a real server on 127.0.0.1 and real gRPC clients. Scores must be
those of the analyzer in process for the same model and events, in order."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

grpc = pytest.importorskip("grpc", reason="the ai-serve extra (grpcio) runs the service")

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402 (after the skip)

from kubesentinel.ai.analyzer import Analyzer  # noqa: E402
from kubesentinel.ai.modelfile import load_analyzer  # noqa: E402
from kubesentinel.ai.proto import SERVICE, messages  # noqa: E402
from kubesentinel.ai.service import (  # noqa: E402
    METHODS,
    AnalyzerService,
    Limits,
    Running,
    check_listen,
    start,
)
from kubesentinel.cli_ai_serve import FalcoDecoder  # noqa: E402
from kubesentinel.errors import ServiceError  # noqa: E402
from kubesentinel.models.event import Event  # noqa: E402
from tests.ai.served import serve, stream_events  # noqa: E402

pb = messages()


@dataclass
class Served:
    running: Running
    target: str

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)


@pytest.fixture
def served(model: Path) -> Iterator[Served]:
    running = serve(model)
    try:
        yield Served(running, f"127.0.0.1:{running.port}")
    finally:
        running.stop(0)


def request(events: list[Event], cluster_workload: bool = True) -> Any:
    return pb.ScoreRequest(events=[wire(e) for e in events])


def wire(event: Event) -> Any:
    w = event.workload
    return pb.Event(
        falco_json=event.raw,
        workload=pb.Workload(cluster=w.cluster, namespace=w.namespace, kind=w.kind, name=w.name),
        origin=event.origin,
    )


def unary(channel: grpc.Channel) -> Any:
    return channel.unary_unary(
        f"/{SERVICE}/Score",
        request_serializer=pb.ScoreRequest.SerializeToString,
        response_deserializer=pb.ScoreResponse.FromString,
    )


def streaming(channel: grpc.Channel) -> Any:
    return channel.stream_stream(
        f"/{SERVICE}/ScoreStream",
        request_serializer=pb.ScoreRequest.SerializeToString,
        response_deserializer=pb.ScoreResponse.FromString,
    )


def expected(reference: Analyzer, batch: list[Event]) -> list[tuple[Any, ...]]:
    return [
        (s.score, s.score >= reference.threshold, tuple(s.reasons), e.workload.key, s.bits, e.id)
        for e, s in zip(batch, reference.score_batch(batch), strict=True)
    ]


def got(response: Any) -> list[tuple[Any, ...]]:
    assert all(not s.error for s in response.scores), [s.error for s in response.scores][:3]
    return [
        (s.score, s.anomalous, tuple(s.reasons), s.workload, s.bits, s.event_id)
        for s in response.scores
    ]


def batches(events: list[Event], size: int) -> list[list[Event]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


def test_score_equals_the_analyzer_in_process_in_order(served: Served, model: Path) -> None:
    reference = load_analyzer(model)
    events = stream_events()
    anomalies = 0
    with served.channel() as channel:
        call = unary(channel)
        for batch in batches(events, 700):
            want = expected(reference, batch)
            assert got(call(request(batch), timeout=30)) == want
            anomalies += sum(row[1] for row in want)
    assert anomalies > 0  # the comparison covered anomalies with their reasons too


def test_stream_answers_each_message_in_order(served: Served, model: Path) -> None:
    reference = load_analyzer(model)
    parts = batches(stream_events(), 500)
    with served.channel() as channel:
        responses = list(streaming(channel)(iter([request(b) for b in parts]), timeout=60))
    assert len(responses) == len(parts)
    for batch, response in zip(parts, responses, strict=True):
        assert got(response) == expected(reference, batch)


def test_health_reports_serving(served: Served) -> None:
    with served.channel() as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        for name in ("", SERVICE):
            reply = check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_garbage_event_gets_an_error_in_its_slot(served: Served, model: Path) -> None:
    reference = load_analyzer(model)
    good = stream_events()[:3]
    events = [
        wire(good[0]),
        pb.Event(falco_json=b"{not json", origin="sensor-7"),
        wire(good[1]),
        pb.Event(falco_json=b"\xff\xfe\x00garbage"),
        pb.Event(falco_json=b'{"rule": "r", "priority": "Notice"}'),
    ]
    with served.channel() as channel:
        response = unary(channel)(pb.ScoreRequest(events=events), timeout=10)
        errors = [s.error for s in response.scores]
        assert errors[0] == errors[2] == ""
        assert errors[1].startswith("KS-E031 malformed Falco alert from sensor-7: not JSON")
        assert errors[3].startswith("KS-E031 malformed Falco alert from request[3]")
        assert "no time" in errors[4]
        scored = got(pb.ScoreResponse(scores=[response.scores[0], response.scores[2]]))
        assert scored == expected(reference, good[:2])
        # The server goes on, and so does a stream that met garbage.
        replies = list(
            streaming(channel)(
                iter([pb.ScoreRequest(events=events[1:2]), request(good[2:3])]), timeout=10
            )
        )
        assert replies[0].scores[0].error.startswith("KS-E031")
        assert got(replies[1]) == expected(reference, good[2:3])


def test_oversized_requests_are_refused_and_the_server_goes_on(model: Path) -> None:
    running = serve(model, Limits(max_events=50, max_message_bytes=256 << 10))
    events = stream_events()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = unary(channel)
            with pytest.raises(grpc.RpcError) as too_many:
                call(request(events[:51]), timeout=10)
            assert too_many.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "51 events in one message; at most 50" in too_many.value.details()
            huge = pb.Event(falco_json=b"x" * (257 << 10))
            with pytest.raises(grpc.RpcError) as too_big:
                call(pb.ScoreRequest(events=[huge]), timeout=10)
            assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.RpcError) as in_stream:
                list(streaming(channel)(iter([request(events[:51])]), timeout=10))
            assert in_stream.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert len(call(request(events[:50]), timeout=10).scores) == 50
    finally:
        running.stop(0)


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    """The build generated analyzer_pb2 from the .proto as it is now (not a stale copy)."""
    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools compiles the proto")
    from google.protobuf import descriptor_pb2

    import kubesentinel

    src = Path(kubesentinel.__file__).parent.parent
    out = tmp_path / "set.pb"
    proto = "kubesentinel/ai/proto/analyzer.proto"
    assert protoc.main(["protoc", f"-I{src}", f"--descriptor_set_out={out}", proto]) == 0
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    for message in fresh.message_type:  # the generated module leaves out json_name
        for field in message.field:
            field.ClearField("json_name")
    built = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert built == fresh
    service = pb.DESCRIPTOR.services_by_name["Analyzer"]
    assert service.full_name == SERVICE
    assert tuple(m.name for m in service.methods) == METHODS


@pytest.mark.parametrize(
    ("listen", "tls", "allow", "result"),
    [
        ("127.0.0.1:50051", False, False, ("127.0.0.1", 50051)),
        ("localhost:0", False, False, ("localhost", 0)),
        ("[::1]:7", False, False, ("::1", 7)),
        ("0.0.0.0:50051", True, False, ("0.0.0.0", 50051)),
        ("0.0.0.0:50051", False, True, ("0.0.0.0", 50051)),
        ("[::]:50051", True, False, ("::", 50051)),
    ],
)
def test_listen_addresses(listen: str, tls: bool, allow: bool, result: tuple[str, int]) -> None:
    assert check_listen(listen, tls=tls, allow_insecure=allow) == result


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "[::]:1", "10.0.0.7:1", "ai.example:1"])
def test_plaintext_beyond_loopback_is_refused(listen: str) -> None:
    with pytest.raises(ServiceError, match="without TLS") as refused:
        check_listen(listen, tls=False, allow_insecure=False)
    assert refused.value.code == "KS-E062"


@pytest.mark.parametrize("listen", ["50051", ":50051", "host:port", "h:99999"])
def test_listen_must_be_host_port(listen: str) -> None:
    with pytest.raises(ServiceError, match="is not HOST:PORT"):
        check_listen(listen, tls=True, allow_insecure=False)


def test_a_port_in_use_is_a_clear_error(served: Served, model: Path) -> None:
    with pytest.raises(ServiceError, match=r"cannot listen on 127\.0\.0\.1"):
        start(
            AnalyzerService(load_analyzer(model), FalcoDecoder("sim"), Limits()),
            "127.0.0.1",
            served.running.port,
        )


def test_start_up_does_not_import_grpc() -> None:
    """The CLI, the monitor's pipeline and the analyzer load without gRPC or protobuf; so does
    the client module until a RemoteScorer is made."""
    code = (
        "import sys, kubesentinel.cli as cli, kubesentinel.runtime.pipeline, "
        "kubesentinel.ai.analyzer, kubesentinel.ai.remote, kubesentinel.ai.service\n"
        "cli._parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
