"""ai/scorer.py: which scorer the monitor gets, in-process learning behind holds, saving."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.modelfile import load_analyzer, save_analyzer
from kubesentinel.ai.scorer import Holds, LocalScorer, Scorer, open_scorer
from kubesentinel.config import AIConfig, Config
from kubesentinel.errors import AIError, ModelError
from tests.ai.synthetic import miner, neighbour_habit, training


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    analyzer, _ = Analyzer.fit(training())
    path = tmp_path_factory.mktemp("model") / "model.json.zst"
    save_analyzer(analyzer, path)
    return path


def _config(**ai: object) -> Config:
    return replace(Config(), ai=replace(AIConfig(), **ai))  # type: ignore[arg-type]


def test_the_shipped_default_is_scoring_off_said_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kubesentinel.ai"):
        assert open_scorer(Config()) is None
    assert [r.getMessage() for r in caplog.records if "scoring off" in r.getMessage()] == [
        "anomaly scoring off: ai.model_path ./ai-module/models/baseline.pkl names a pickle, "
        "which KubeSentinel never loads; train a model (`kubesentinel ai train --events ... "
        "--model model.json.zst`) and set ai.model_path or --model"
    ]


def test_no_model_file_yet_is_scoring_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kubesentinel.ai"):
        assert open_scorer(_config(model_path=str(tmp_path / "m.json"))) is None
    assert "no model at ai.model_path" in caplog.text


def test_an_empty_model_path_is_scoring_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kubesentinel.ai"):
        assert open_scorer(_config(model_path="")) is None
        assert open_scorer(_config(model_path="  ")) is None
    assert "ai.model_path is empty" in caplog.text


def test_configured_and_given_models_score_in_process(model: Path) -> None:
    for scorer in (
        open_scorer(_config(model_path=str(model))),
        open_scorer(Config(), model=str(model)),
        # --model wins over an endpoint
        open_scorer(_config(endpoint="localhost:1"), model=str(model)),
    ):
        assert isinstance(scorer, LocalScorer)
        assert isinstance(scorer, Scorer)
        assert isinstance(scorer, Holds)
        assert scorer.score_batch([miner(0)])[0].score >= 0.75


def test_a_model_given_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model"):
        open_scorer(Config(), model=str(tmp_path / "missing.json"))


def test_threshold_comes_from_the_config(model: Path) -> None:
    scorer = open_scorer(_config(model_path=str(model), threshold=0.3))
    assert isinstance(scorer, LocalScorer)
    assert scorer.analyzer.threshold == 0.3


def test_local_scorer_learns_only_at_settle_and_outside_holds(model: Path) -> None:
    scorer = LocalScorer.from_file(model)
    first = scorer.score_batch([neighbour_habit(0)])[0]
    scorer.hold("sim/shop/Deployment/api", 0, 2**62)
    scorer.settle()
    assert scorer.score_batch([neighbour_habit(400)])[0].score == pytest.approx(first.score)


def test_close_saves_only_when_asked(model: Path, tmp_path: Path) -> None:
    saved = tmp_path / "after.json"
    scorer = LocalScorer.from_file(model, save_to=saved)
    scorer.score_batch([neighbour_habit(0), miner(1)])
    scorer.close()
    after = load_analyzer(saved)
    after.learning = False
    # (scored after the weak-signal horizon, so the miner's saved signal no longer counts)
    assert (
        after.score(neighbour_habit(6000)).score
        < load_analyzer(model).score(neighbour_habit(6000)).score
    )  # the habit was learned and saved...
    assert after.score(miner(500)).score >= 0.75  # ...the miner was not
    untouched = model.read_bytes()
    LocalScorer.from_file(model).close()
    assert model.read_bytes() == untouched


def test_an_endpoint_gives_the_remote_scorer() -> None:
    from kubesentinel.ai.remote import RemoteScorer

    scorer = open_scorer(_config(endpoint="localhost:50051"))
    try:
        assert isinstance(scorer, RemoteScorer)
        assert isinstance(scorer, Scorer)
    finally:
        assert scorer is not None
        scorer.close()


def test_save_model_with_an_endpoint_is_refused() -> None:
    with pytest.raises(AIError, match="--save-model saves an in-process model"):
        open_scorer(_config(endpoint="localhost:50051"), save_to="x.json")
