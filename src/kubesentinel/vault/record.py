"""What a vault record hashes to, and how segments chain.

A record is a kind and a list of JSON values (a row's columns, in the store's order). Its
canonical bytes are the compact JSON array ``[kind, *fields]`` with object keys sorted, and
its hash is the RFC 6962 leaf hash of those bytes, so a record is a Merkle leaf as it stands
and an exported record checks with any RFC 6962 tool. The kind comes first, so an event and
an incident with the same columns never hash alike.

Segments chain: each head hashes the head before it with the segment's root, id and record
count, in fixed-width fields behind a label of their own (never 0x00 or 0x01, so a head is
never a Merkle leaf or node). Removing, inserting or reordering a segment breaks every head
after it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any, Final

import orjson

from kubesentinel.vault.merkle import HASH_SIZE, leaf_hash

__all__ = ["CHAIN_LABEL", "RECORD_KINDS", "canonical_bytes", "chain_head", "record_hash"]

# Every kind of record the vault hashes. A new kind is added here, never reused.
RECORD_KINDS: Final = frozenset(
    {
        "segment",  # one write: its id, time, event count and evidence digest
        "event",  # one stored event row
        "facet",  # what events share (rule, workload, container...), stored once
        "incident",  # one state of an incident row
        "tombstone",  # a record deleted by retention: what went, when and why
        "rollup",  # a summary kept in place of expired events
        "hold",  # a legal hold placed on, or released from, an incident
    }
)
CHAIN_LABEL: Final = b"kubesentinel/vault/chain-head/v1\n"
_MAX_U64: Final = 2**64 - 1

# Only for what orjson refuses (integers beyond 64 bits); same separators, sorted keys.
# ASCII escapes keep a lone surrogate encodable; NaN is refused, as on the orjson path.
_FALLBACK: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)


def canonical_bytes(kind: str, fields: Sequence[Any]) -> bytes:
    """The bytes a record's hash covers: the compact JSON of ``[kind, *fields]``.

    Fields are JSON values: None, bool, int (any size), float, str, and lists and dicts
    (string keys) of them. A non-finite float among the fields is refused: orjson would write
    it as null, the same as None. Anything else orjson writes natively (a datetime, a UUID)
    hashes as the string it writes; what it cannot write is a TypeError.
    """
    if kind not in RECORD_KINDS:
        raise ValueError(f"unknown record kind {kind!r}; the vault hashes {sorted(RECORD_KINDS)}")
    if float in map(type, fields) and not all(
        math.isfinite(value) for value in fields if type(value) is float
    ):
        raise ValueError(f"a {kind} record has a non-finite float; JSON cannot say it")
    document = [kind, *fields]
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError as orjson_error:  # orjson.JSONEncodeError: a big integer, or not JSON
        if not _string_keys_only(document):  # the stdlib would quietly turn 1 into "1"
            raise TypeError(f"a {kind} record has an object key that is not a string") from None
        try:
            return _FALLBACK.encode(document).encode()
        except (TypeError, ValueError) as error:
            raise TypeError(f"a {kind} record is not JSON: {error}") from orjson_error


def _string_keys_only(document: list[Any]) -> bool:
    pending: list[Any] = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if not all(type(key) is str for key in value):
                return False
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
    return True


def record_hash(kind: str, fields: Sequence[Any]) -> bytes:
    """The record's Merkle leaf hash: SHA-256(0x00 || canonical_bytes(kind, fields))."""
    return leaf_hash(canonical_bytes(kind, fields))


def chain_head(
    previous_head: bytes, segment_root: bytes, segment_id: int, record_count: int
) -> bytes:
    """The head of the chain after a segment:
    SHA-256(CHAIN_LABEL || previous_head || segment_root || u64 id || u64 count), big-endian.
    """
    if len(previous_head) != HASH_SIZE or len(segment_root) != HASH_SIZE:
        raise ValueError(f"a chain head and a segment root are {HASH_SIZE} bytes each")
    if not (0 <= segment_id <= _MAX_U64 and 0 <= record_count <= _MAX_U64):
        raise ValueError("a segment id and a record count are unsigned 64-bit integers")
    return hashlib.sha256(
        CHAIN_LABEL
        + previous_head
        + segment_root
        + segment_id.to_bytes(8, "big")
        + record_count.to_bytes(8, "big")
    ).digest()
