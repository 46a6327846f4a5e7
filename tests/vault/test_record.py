"""Record hashes: canonical, unambiguous, domain-separated; the segment chain."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesentinel.vault import merkle, record
from kubesentinel.vault.record import (
    RECORD_KINDS,
    canonical_bytes,
    chain_head,
    record_hash,
)

EVENT_ROW: list[Any] = [
    "0f3a9c2e5b7d4e1f8a6c0b2d4e6f8a0c",
    1_764_822_000_123_456_789,
    "Terminal shell in container",
    "Warning",
    {"proc.name": "bash", "container.id": "abc123", "user.uid": 0},
    0.93,
    None,
    True,
    7,
]
GENESIS = bytes(32)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def test_the_hash_is_the_rfc6962_leaf_hash_of_the_canonical_bytes() -> None:
    data = canonical_bytes("event", EVENT_ROW)
    assert data.startswith(b'["event","0f3a9c2e')
    assert b'{"container.id":"abc123","proc.name":"bash","user.uid":0}' in data  # keys sorted
    assert b" " not in data.replace(b"Terminal shell in container", b"")  # compact
    assert record_hash("event", EVENT_ROW) == hashlib.sha256(b"\x00" + data).digest()
    assert record_hash("event", EVENT_ROW) == merkle.leaf_hash(data)


def test_the_kind_separates_records_with_the_same_fields() -> None:
    hashes = {record_hash(kind, EVENT_ROW) for kind in RECORD_KINDS}
    assert len(hashes) == len(RECORD_KINDS)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown record kind 'evnt'"):
        record_hash("evnt", EVENT_ROW)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ([1], [1.0]),  # an int is not the float of the same value
        ([1], [True]),
        ([0], [False]),
        ([None], [""]),
        (["1"], [1]),
        ([["a", "b"]], ["a", "b"]),  # nesting is kept: no flattening collisions
        (["a,b"], ["a", "b"]),
        (['a"', "b"], ["a", '"b']),
        ([{"a": 1}], [["a", 1]]),
        ([2**64], [str(2**64)]),
    ],
)
def test_different_fields_never_share_a_hash(one: list[Any], other: list[Any]) -> None:
    assert record_hash("event", one) != record_hash("event", other)


def test_a_changed_column_changes_the_hash() -> None:
    for position in range(len(EVENT_ROW)):
        changed = list(EVENT_ROW)
        changed[position] = "changed"
        assert record_hash("event", changed) != record_hash("event", EVENT_ROW)


def test_integers_beyond_64_bits_still_encode() -> None:
    huge = [2**64, -(2**63) - 1, {"inode": 2**100}]
    assert canonical_bytes("event", huge) == (
        b'["event",18446744073709551616,-9223372036854775809,'
        b'{"inode":1267650600228229401496703205376}]'
    )
    assert record_hash("event", [2**64]) != record_hash("event", [2**64 + 1])


def test_values_json_cannot_say_unambiguously_are_refused() -> None:
    with pytest.raises(ValueError, match="non-finite float"):
        record_hash("event", [float("nan")])
    with pytest.raises(ValueError, match="non-finite float"):
        record_hash("event", [1, float("-inf")])
    with pytest.raises(TypeError, match="not a string"):
        record_hash("event", [2**64, {1: "a"}])  # the stdlib would write the key as "1"
    with pytest.raises(TypeError, match="not JSON"):
        record_hash("event", [2**64, b"bytes"])
    with pytest.raises(TypeError):
        record_hash("event", [{1: "a"}])


@given(st.lists(json_values, max_size=6))
def test_canonical_bytes_are_deterministic_and_round_trip(fields: list[Any]) -> None:
    data = canonical_bytes("event", fields)
    assert canonical_bytes("event", list(fields)) == data
    assert canonical_bytes("event", tuple(fields)) == data
    assert json.loads(data) == ["event", *fields]


@given(st.lists(json_values, max_size=4), st.lists(json_values, max_size=4))
def test_records_with_different_values_have_different_hashes(
    one: list[Any], other: list[Any]
) -> None:
    if json.dumps(one, sort_keys=True) != json.dumps(other, sort_keys=True):
        assert record_hash("event", one) != record_hash("event", other)


def test_the_chain_head_is_fixed_width_and_labelled() -> None:
    root = merkle.root([record_hash("event", EVENT_ROW)])
    head = chain_head(GENESIS, root, 1, 1)
    expected = hashlib.sha256(
        b"kubesentinel/vault/chain-head/v1\n" + GENESIS + root + (1).to_bytes(8, "big") * 2
    ).digest()
    assert head == expected
    assert head != merkle.node_hash(GENESIS, root)


def _chain(segments: list[tuple[int, bytes, int]]) -> list[bytes]:
    heads, head = [], GENESIS
    for segment_id, root, count in segments:
        head = chain_head(head, root, segment_id, count)
        heads.append(head)
    return heads


def test_a_removed_inserted_or_reordered_segment_breaks_the_chain() -> None:
    segments = [(i, merkle.leaf_hash(bytes([i])), 10 + i) for i in range(1, 6)]
    heads = _chain(segments)
    removed = _chain(segments[:2] + segments[3:])
    inserted = _chain([*segments[:2], (9, merkle.leaf_hash(b"x"), 1), *segments[2:]])
    reordered = _chain([segments[0], segments[2], segments[1], *segments[3:]])
    for changed in (removed, inserted, reordered):
        assert changed[-1] != heads[-1]
        assert not set(changed[2:]) & set(heads)  # every head from the change on differs


@pytest.mark.parametrize(
    ("root", "segment_id", "count"),
    [(merkle.EMPTY_ROOT, 2, 7), (merkle.leaf_hash(b"other"), 1, 7), (merkle.EMPTY_ROOT, 1, 8)],
)
def test_each_part_of_a_segment_changes_its_head(root: bytes, segment_id: int, count: int) -> None:
    assert chain_head(GENESIS, root, segment_id, count) != chain_head(
        GENESIS, merkle.EMPTY_ROOT, 1, 7
    )


def test_chain_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        chain_head(b"short", merkle.EMPTY_ROOT, 1, 1)
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        chain_head(GENESIS, merkle.EMPTY_ROOT, -1, 1)
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        chain_head(GENESIS, merkle.EMPTY_ROOT, 1, 2**64)


def test_public_names_are_pinned() -> None:
    assert sorted(record.__all__) == [
        "CHAIN_LABEL",
        "RECORD_KINDS",
        "canonical_bytes",
        "chain_head",
        "record_hash",
    ]
