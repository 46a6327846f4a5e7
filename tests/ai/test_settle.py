"""Learning in step with the monitor's incidents across the wire: Score with defer_learning,
then Settle with holds and learn tokens, on a real server; and the ai.tls_* keys."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

grpc = pytest.importorskip("grpc", reason="the ai-serve extra (grpcio) runs the service")

from kubesentinel.ai.modelfile import load_analyzer  # noqa: E402
from kubesentinel.ai.proto import SERVICE, messages  # noqa: E402
from kubesentinel.ai.remote import RemoteScorer  # noqa: E402
from kubesentinel.ai.scorer import open_scorer  # noqa: E402
from kubesentinel.ai.service import AnalyzerService, Limits, Running  # noqa: E402
from kubesentinel.cli_ai_serve import FalcoDecoder  # noqa: E402
from kubesentinel.config import load_config  # noqa: E402
from kubesentinel.errors import ConfigError, ServiceError  # noqa: E402
from kubesentinel.models.event import Event  # noqa: E402
from tests.ai.served import as_monitor, serve, stream_events  # noqa: E402

pb = messages()


@pytest.fixture
def plain(model: Path) -> Iterator[Running]:
    running = serve(model)
    yield running
    running.stop(0)


def calls(port: int) -> tuple[Any, Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    score = channel.unary_unary(
        f"/{SERVICE}/Score",
        request_serializer=pb.ScoreRequest.SerializeToString,
        response_deserializer=pb.ScoreResponse.FromString,
    )
    settle = channel.unary_unary(
        f"/{SERVICE}/Settle",
        request_serializer=pb.SettleRequest.SerializeToString,
        response_deserializer=pb.SettleResponse.FromString,
    )
    return score, settle


def wire(event: Event) -> Any:
    w = event.workload
    return pb.Event(
        falco_json=event.raw,
        workload=pb.Workload(cluster=w.cluster, namespace=w.namespace, kind=w.kind, name=w.name),
    )


def deferred(events: list[Event]) -> Any:
    return pb.ScoreRequest(events=[wire(e) for e in events], defer_learning=True)


def novel_batch() -> list[Event]:
    """Events whose scores drop once they are learned (first seen in this stream)."""
    return stream_events()[:400]


def test_deferred_events_are_learned_only_when_settled(plain: Running) -> None:
    score, settle = calls(plain.port)
    batch = novel_batch()
    first = score(deferred(batch))
    assert first.learn_token
    # Not settled: a second look scores them as still unlearned (rate aside, the same bits).
    again = score(deferred(batch))
    assert again.learn_token not in (0, first.learn_token)
    done = settle(pb.SettleRequest(learn_tokens=[first.learn_token, again.learn_token]))
    ordinary = sum(not s.anomalous for s in (*first.scores, *again.scores))  # never learned
    assert ordinary > len(batch)
    assert (done.learned, done.held, done.unknown_tokens) == (ordinary, 0, 0)
    # A token is settled once.
    twice = settle(pb.SettleRequest(learn_tokens=[first.learn_token, 12345]))
    assert (twice.learned, twice.unknown_tokens) == (0, 2)


def test_a_hold_keeps_its_workload_unlearned(plain: Running, model: Path) -> None:
    score, settle = calls(plain.port)
    batch = novel_batch()
    workload = batch[0].workload.key
    response = score(deferred(batch))
    ordinary = [e for e, s in zip(batch, response.scores, strict=True) if not s.anomalous]
    mine = [e for e in ordinary if e.workload.key == workload]
    assert mine
    hold = pb.Hold(workload=workload, start_ns=batch[0].time_ns, end_ns=batch[-1].time_ns)
    done = settle(pb.SettleRequest(holds=[hold], learn_tokens=[response.learn_token]))
    assert (done.held, done.learned) == (len(mine), len(ordinary) - len(mine))
    # The server learned exactly what an analyzer in process learns under the same hold.
    reference = load_analyzer(model)
    reference.score_batch(batch, defer=True)
    reference.hold(workload, batch[0].time_ns, batch[-1].time_ns)
    reference.learn_deferred()
    later = stream_events()[400:800]
    assert [tuple(s.reasons) for s in score(deferred(later)).scores] == [
        s.reasons for s in reference.score_batch(later, defer=True)
    ]


def test_unsettled_calls_are_dropped_unlearned(model: Path) -> None:
    running = serve(model, Limits(pending_calls=2))
    try:
        score, settle = calls(running.port)
        batch = novel_batch()
        responses = [score(deferred(batch[i : i + 10])) for i in (0, 10, 20)]
        done = settle(pb.SettleRequest(learn_tokens=[r.learn_token for r in responses]))
        kept = sum(not s.anomalous for r in responses[1:] for s in r.scores)
        assert (done.learned, done.unknown_tokens) == (kept, 1)  # the oldest was pushed out
    finally:
        running.stop(0)
    running = serve(model, Limits(pending_s=0.0))
    try:
        score, settle = calls(running.port)
        token = score(deferred(novel_batch()[:10])).learn_token
        done = settle(pb.SettleRequest(learn_tokens=[token]))
        assert (done.learned, done.unknown_tokens) == (0, 1)  # too old
    finally:
        running.stop(0)


def test_a_settle_too_large_is_refused(model: Path) -> None:
    running = serve(model, Limits(max_events=4))
    try:
        _, settle = calls(running.port)
        with pytest.raises(grpc.RpcError) as caught:
            settle(pb.SettleRequest(learn_tokens=[1, 2, 3, 4, 5]))
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        running.stop(0)


def test_remote_scorer_holds_as_the_analyzer_in_process(plain: Running, model: Path) -> None:
    batch = novel_batch()
    workload = batch[0].workload.key
    reference = load_analyzer(model)
    with RemoteScorer(f"127.0.0.1:{plain.port}") as remote:
        for scorer in (remote, reference):
            scorer.score_batch(batch, **({} if scorer is remote else {"defer": True}))
            scorer.hold(workload, batch[0].time_ns, batch[-1].time_ns)
        remote.settle()
        reference.learn_deferred()
        assert (remote.learned_events, remote.held_events) == (
            reference.learned_events,
            reference.held_events,
        )
        assert remote.held_events > 0
        later = stream_events()[400:900]
        assert remote.score_batch(later) == as_monitor(reference, later)


def test_an_older_server_without_settle_still_scores(
    model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = AnalyzerService(load_analyzer(model), FalcoDecoder("sim"), Limits())
    server = grpc.server(ThreadPoolExecutor(2))
    only_score = grpc.unary_unary_rpc_method_handler(
        service.Score,
        request_deserializer=pb.ScoreRequest.FromString,
        response_serializer=pb.ScoreResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Score": only_score}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        batch = novel_batch()[:50]
        with (
            caplog.at_level(logging.WARNING, logger="kubesentinel.ai"),
            RemoteScorer(f"127.0.0.1:{port}") as remote,
        ):
            assert len(remote.score_batch(batch)) == len(batch)
            remote.hold(batch[0].workload.key, 0, 1)
            remote.settle()
            remote.settle()
            remote.score_batch(batch)  # no longer deferred: nothing waits for a Settle
            remote.settle()
        warnings = [r for r in caplog.records if "has no Settle" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        server.stop(0)


def test_a_failing_settle_is_logged_and_does_not_raise(
    model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = serve(model)
    remote = RemoteScorer(f"127.0.0.1:{running.port}", timeout_s=2)
    try:
        remote.score_batch(novel_batch()[:20])
        running.stop(0)
        with caplog.at_level(logging.ERROR, logger="kubesentinel.ai"):
            remote.settle()
        assert any("Settle failed" in r.getMessage() for r in caplog.records)
        assert remote.learned_events == 0
    finally:
        remote.close()


class TestConfigKeys:
    def test_mutual_tls_from_config(self, model: Path, tmp_path: Path) -> None:
        trustme = pytest.importorskip("trustme", reason="trustme makes the test certificates")
        from kubesentinel.ai.service import TLSFiles

        ca = trustme.CA()
        server = ca.issue_cert("localhost")
        (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
        client = ca.issue_cert("monitor@kubesentinel")
        client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
        client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
        tls = TLSFiles(
            server.cert_chain_pems[0].bytes(), server.private_key_pem.bytes(), ca.cert_pem.bytes()
        )
        running = serve(model, tls=tls)
        try:
            config_file = tmp_path / "config.yaml"
            config_file.write_text(
                "ai:\n"
                f'  endpoint: "localhost:{running.port}"\n'
                f'  tls_ca: "{tmp_path / "ca.pem"}"\n'
                f'  tls_cert: "{tmp_path / "client.pem"}"\n'
                f'  tls_key: "{tmp_path / "client.key"}"\n'
            )
            config = load_config(str(config_file))
            scorer = open_scorer(config)
            assert isinstance(scorer, RemoteScorer)
            events = novel_batch()[:30]
            assert scorer.score_batch(events) == as_monitor(load_analyzer(model), events)
            scorer.close()
            # Without the client certificate the service refuses the monitor.
            anonymous = open_scorer(
                dataclasses.replace(
                    config, ai=dataclasses.replace(config.ai, tls_cert="", tls_key="")
                )
            )
            assert anonymous is not None
            with pytest.raises(ServiceError, match="analyzer service at localhost"):
                anonymous.score_batch(events)
            anonymous.close()
        finally:
            running.stop(0)

    def test_a_certificate_without_its_key_is_an_error(self, tmp_path: Path) -> None:
        config_file = tmp_path / "config.yaml"
        config_file.write_text('ai:\n  endpoint: "localhost:1"\n  tls_cert: "client.pem"\n')
        with pytest.raises(ServiceError, match="needs its key") as caught:
            open_scorer(load_config(str(config_file)))
        assert "ai.tls_cert and ai.tls_key" in (caught.value.hint or "")

    def test_an_unreadable_ca_names_the_file(self, tmp_path: Path) -> None:
        config_file = tmp_path / "config.yaml"
        missing = tmp_path / "nope.pem"
        config_file.write_text(f'ai:\n  endpoint: "localhost:1"\n  tls_ca: "{missing}"\n')
        # before any connection, naming the key, the file it names and the config file
        with pytest.raises(ConfigError) as info:
            open_scorer(load_config(str(config_file)))
        assert (info.value.file, info.value.message) == (
            str(config_file),
            f"ai.tls_ca: no such file: {missing}",
        )
