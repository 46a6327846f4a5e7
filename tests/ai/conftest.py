from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained model file (tests/ai/served.py)."""
    from tests.ai.served import train

    return train(tmp_path_factory.mktemp("model"))
