"""A model and a real `ai serve` server for the service's tests (tests/ai/conftest.py holds
the model fixture)."""

from __future__ import annotations

import socket
from pathlib import Path

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.modelfile import load_analyzer, save_analyzer
from kubesentinel.ai.service import AnalyzerService, Limits, Running, TLSFiles, start
from kubesentinel.cli_ai_serve import FalcoDecoder
from kubesentinel.models.anomaly_score import Scored
from kubesentinel.models.event import Event
from tests.ai.helpers import normal_period, sim


def train(directory: Path) -> Path:
    """A model of the simulated stream's normal period (seed 1)."""
    analyzer, _ = Analyzer.fit(normal_period(1))
    path = directory / "model.json.zst"
    save_analyzer(analyzer, path)
    return path


def stream_events() -> list[Event]:
    """The simulated stream after its training period: normal events and attacks."""
    normal = {e.id for e in normal_period(1)}
    return [e for e in sim(1)[1] if e.id not in normal]


def as_monitor(analyzer: Analyzer, batch: list[Event]) -> list[Scored]:
    """``batch`` scored as the monitor's scorers score a batch: learning deferred until the
    batch is settled (no holds here), then learned."""
    scores = analyzer.score_batch(batch, defer=True)
    analyzer.learn_deferred()
    return scores


def serve(model: Path, limits: Limits | None = None, tls: TLSFiles | None = None) -> Running:
    """A server of ``model`` on 127.0.0.1, on a free port."""
    service = AnalyzerService(load_analyzer(model), FalcoDecoder("sim"), limits or Limits())
    return start(service, "127.0.0.1", 0, tls=tls)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
