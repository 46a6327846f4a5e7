"""The model file: JSON (zstd optional), schema version, digest verified, pickles refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from kubesentinel.ai.analyzer import Analyzer
from kubesentinel.ai.modelfile import load_analyzer, load_model, save_analyzer, save_model
from kubesentinel.errors import ModelError
from tests.ai.synthetic import miner, neighbour_habit, training


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.fit(training())[0]


@pytest.mark.parametrize("name", ["model.json", "model.json.zst"])
def test_round_trip_gives_the_same_scores(analyzer: Analyzer, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    save_analyzer(analyzer, path)
    if name.endswith(".zst"):
        assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    loaded = load_analyzer(path)
    probe = [miner(1), neighbour_habit(2)]
    loaded.learning = analyzer.learning = False
    assert loaded.score_batch(probe) == analyzer.score_batch(probe)
    assert load_analyzer(path, threshold=0.9).threshold == 0.9


def test_tampered_model_is_refused(analyzer: Analyzer, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    save_analyzer(analyzer, path)
    doc = json.loads(path.read_text())
    levels = doc["model"]["analyzer"]["rarity"]["levels"]
    level = next(iter(levels.values()))
    level["counts"]["process\x1fxmrig"] = 1000  # teach it the miner behind its back
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="does not match its sha256 digest"):
        load_analyzer(path)


@pytest.mark.parametrize("name", ["baseline.pkl", "model.pickle", "m.joblib", "m.pkl.zst"])
def test_pickle_paths_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelError, match="pickle runs code"):
        load_model(path)
    with pytest.raises(ModelError, match="pickle runs code"):
        save_model({}, path)


def test_pickle_content_is_refused_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelError, match="holds a pickle"):
        load_model(path)


def test_other_schema_version_and_foreign_json(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    save_model({"x": 1}, path)
    doc = json.loads(path.read_text())
    doc["schema_version"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="schema version 99"):
        load_model(path)
    path.write_text('{"hello": "world"}')
    with pytest.raises(ModelError, match="not a KubeSentinel model"):
        load_model(path)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="not JSON"):
        load_model(path)
    with pytest.raises(ModelError, match="cannot read"):
        load_model(tmp_path / "missing.json")


def test_well_signed_but_malformed_model(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    save_model({"analyzer": {"peers": {}}}, path)
    with pytest.raises(ModelError, match="malformed"):
        load_analyzer(path)
