"""Property-based fuzzing of the policy loader, seeded with the real policies.

Inputs are mutations of the shipped default policy, the docs example and the malformed files
of test_policy_errors (lines dropped, repeated or re-indented; YAML tokens, tags, aliases,
control characters, huge numbers and invalid UTF-8 spliced in), documents built from the
schema's own keys with values of every type, and arbitrary bytes. The property: loading
returns a Policy whose every class name exists, or raises PolicyError naming the file; no
other exception leaves the boundary.

Derandomized with a fixed number of examples: the same inputs on every run, never flaky.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubesentinel.errors import PolicyError
from kubesentinel.models.falco_alert import Priority
from kubesentinel.vault import policy_schema
from kubesentinel.vault.policy import DEFAULT_POLICY, classify, load_policy
from tests.vault.test_policy import docs_example
from tests.vault.test_policy_errors import MALFORMED

FUZZ = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SEEDS = [DEFAULT_POLICY.read_text(encoding="utf-8"), docs_example()] + [
    text for text, *_ in MALFORMED
]
TOKENS = [
    ":", ": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: *a", "!!python/object:os.system ",
    "!!binary ", "!custom ", "? ", "|\n", ">-\n", "\t", "\x00", "\x07", "\ufeff", "---\n",
    "...\n", "%YAML 1.1\n", "#", "'", '"', "\\", "~", "null", "yes", "on", "0x1F", "0o17",
    "1_000", "1:30", "-1", "9" * 5000, "1e999", ".nan", ".inf", "2024-01-01", "*", "?",
    "[z-a]", "[", "Kind/name", "T1059*", "\n", "\n  ", "\n    ", "  ",
]  # fmt: skip
KEYS = (
    policy_schema.ROOT_KEYS
    + policy_schema.CONTEXT_KEYS
    + policy_schema.CLASS_KEYS
    + policy_schema.RULE_KEYS
    + policy_schema.MATCH_KEYS
    + ("hold", "incident", "default", "noise", "warning", "debug", "signal", "none")
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        action = draw(st.sampled_from(["drop", "repeat", "indent", "splice", "replace"]))
        if not lines:
            break
        if action == "drop":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "indent":
            lines[at] = " " * draw(st.integers(0, 8)) + lines[at].lstrip()
        else:
            line = lines[at]
            cut = draw(st.integers(0, len(line)))
            token = draw(st.sampled_from(TOKENS) | st.text(max_size=8))
            rest = line[cut:] if action == "splice" else line[cut + draw(st.integers(0, 6)) :]
            lines[at] = line[:cut] + token + rest
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 3)) == 0 and data:  # one in four
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(max_size=3)) + data[at + 1 :]  # invalid UTF-8 too
    return data


def _values() -> st.SearchStrategy[Any]:
    scalars = (
        st.sampled_from(KEYS)
        | st.integers(-(10**20), 10**20)
        | st.floats(allow_nan=True)
        | st.booleans()
        | st.none()
        | st.text(max_size=12)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
        ),
        max_leaves=30,
    )


@st.composite
def schema_shaped(draw: st.DrawFn) -> bytes:
    document = draw(st.dictionaries(st.sampled_from(KEYS), _values(), max_size=5))
    return yaml.safe_dump(document, allow_unicode=True).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _check(data: bytes, workdir: Path) -> None:
    path = workdir / "fuzz.yaml"
    path.write_bytes(data)
    try:
        policy = load_policy([path])
    except PolicyError as exc:
        error: PolicyError | None = exc
    else:
        error = None
    if error is not None:
        assert error.file == str(path)
        assert error.line is None or error.line >= 1
        return
    for priority in Priority:
        name = classify(policy, priority=priority, rule="r", tags=("t",), source="syscall",
                        namespace="n", kind="Pod", name="p", incident=None)  # fmt: skip
        assert name in policy.classes


@FUZZ
@given(data=mutated() | schema_shaped() | st.binary(max_size=200))
def test_any_input_loads_or_raises_policy_error(workdir: Path, data: bytes) -> None:
    _check(data, workdir)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_seeds_are_valid(workdir: Path, seed: str) -> None:
    _check(seed.encode(), workdir)
    load_policy([workdir / "fuzz.yaml"])
