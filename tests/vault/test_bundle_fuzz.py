"""Property-based fuzzing of the bundle reader, seeded with real bundles of a sealed store.

Inputs are real bundles (an incident's, a time range's) cut at any byte, with bits flipped
anywhere, with a field of any line replaced by any JSON value, with lines dropped, repeated or
swapped, and arbitrary bytes. The property: ``verify_bundle`` returns a report or raises
BundleError (exit 2); no other exception leaves it. And a report that finds nothing wrong
proves exactly what the unedited bundle proves: no edit changes the evidence and still passes.

Derandomized with a fixed number of examples: the same inputs on every run, never flaky.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubesentinel.errors import BundleError
from kubesentinel.vault.bundle_verify import verify_bundle
from tests.vault.test_export import export, incident_ids
from tests.vault.test_store_seals import build

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Seeds:
    """A scratch file and real bundles (bytes, what each proves); a short repr keeps
    Hypothesis's failure reports readable."""

    def __init__(self, scratch: Path, bundles: list[tuple[bytes, str]]) -> None:
        self.scratch = scratch
        self.bundles = bundles

    def __repr__(self) -> str:
        return f"Seeds({len(self.bundles)} bundles)"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    """An incident's bundle and a time range's, of a store of two sealed writes."""
    directory = tmp_path_factory.mktemp("bundles")
    store = directory / "vault" / "kubesentinel.db"
    build(store, batches=2)
    bundles = []
    for name, selection in (
        ("incident", ["--incident-id", incident_ids(store)[0]]),
        ("range", ["--from", "2025-02-10T09:15:40Z", "--to", "2025-02-10T09:15:52Z"]),
    ):
        path = directory / name
        export(store, path, *selection)
        report = verify_bundle(path)
        assert report.ok, report.problems
        bundles.append((path.read_bytes(), report.proven_sha256))
    return Seeds(directory / "fuzz.bundle", bundles)


def check(scratch: Path, data: bytes, proven: str) -> None:
    scratch.write_bytes(data)
    error: BundleError | None = None
    try:
        report = verify_bundle(scratch)
    except BundleError as exc:
        error = exc
    if error is not None:
        assert error.exit_code == 2
        assert error.message.startswith(("not a valid bundle", "cannot read the bundle"))
        return
    assert report.problem_count >= len(report.problems)
    if report.ok:
        assert report.proven_sha256 == proven, "an edited bundle passed with other evidence"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["", "AAAA", "=" * 44, "zstd", "none", "\u2014"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip


@FUZZ
@given(which=st.integers(0, 1), cut=st.integers(0, 1 << 20))
def test_truncated(seeds: Seeds, which: int, cut: int) -> None:
    scratch, bundles = seeds.scratch, seeds.bundles
    data, proven = bundles[which]
    check(scratch, data[: cut % (len(data) + 1)], proven)


@FUZZ
@given(
    which=st.integers(0, 1),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), min_size=1, max_size=3),
)
def test_bit_flips(seeds: Seeds, which: int, flips: list[tuple[int, int]]) -> None:
    scratch, bundles = seeds.scratch, seeds.bundles
    data, proven = bundles[which]
    edited = bytearray(data)
    for position, bit in flips:
        edited[position % len(edited)] ^= 1 << bit
    check(scratch, bytes(edited), proven)


@FUZZ
@given(which=st.integers(0, 1), line=st.integers(0, 1000), field=st.integers(0, 50),
       value=JSON_VALUES)  # fmt: skip
def test_a_field_replaced_by_any_json(
    seeds: Seeds, which: int, line: int, field: int, value: Any
) -> None:
    scratch, bundles = seeds.scratch, seeds.bundles
    data, proven = bundles[which]
    lines = [orjson.loads(text) for text in data.splitlines()]
    target = lines[line % len(lines)]
    names = sorted(target)
    name = names[field % len(names)]
    inner = target[name]
    if isinstance(inner, list) and inner and field % 2:  # an element of a record or proof
        inner[field % len(inner)] = value
    else:
        target[name] = value
    # The stdlib writes integers beyond 64 bits, which orjson refuses to.
    encoded = [json.dumps(doc, separators=(",", ":"), ensure_ascii=False) for doc in lines]
    check(scratch, "".join(f"{line}\n" for line in encoded).encode(), proven)


@FUZZ
@given(
    which=st.integers(0, 1),
    moves=st.lists(
        st.tuples(st.sampled_from(["drop", "dup", "swap"]), st.integers(0, 1000)), max_size=3
    ),
)
def test_lines_dropped_repeated_or_swapped(
    seeds: Seeds, which: int, moves: list[tuple[str, int]]
) -> None:
    scratch, bundles = seeds.scratch, seeds.bundles
    data, proven = bundles[which]
    lines = data.splitlines(keepends=True)
    for move, where in moves:
        at = where % len(lines)
        if move == "drop" and len(lines) > 1:
            del lines[at]
        elif move == "dup":
            lines.insert(at, lines[at])
        elif move == "swap":
            lines[at], lines[-1 - at] = lines[-1 - at], lines[at]
    check(scratch, b"".join(lines), proven)


@FUZZ
@given(data=st.binary(max_size=4096) | st.text(max_size=512).map(str.encode))
def test_arbitrary_bytes(seeds: Seeds, data: bytes) -> None:
    scratch, bundles = seeds.scratch, seeds.bundles
    check(scratch, data, bundles[0][1])
    # and the same after a valid header: the reader goes past the first line
    header = bundles[0][0].split(b"\n", 1)[0] + b"\n"
    check(scratch, header + data, bundles[0][1])
