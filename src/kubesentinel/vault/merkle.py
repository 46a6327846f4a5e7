"""RFC 6962 Merkle trees over SHA-256: roots, inclusion proofs and consistency proofs.

The tree is the one Certificate Transparency and every C2SP transparency log use, so a root
or proof made here checks with any of their tools. Leaves are hashed ``SHA-256(0x00 || d)``
and interior nodes ``SHA-256(0x01 || left || right)``; the two prefixes keep a leaf from
being passed off as a node. Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 word for word.

Everything is iterative: a tree is built level by level, pairing neighbours and carrying an
odd last node up unchanged, which gives exactly RFC 6962's tree (split at the largest power
of two below the size) without recursion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()  # MTH({}) in RFC 6962 §2.1

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf's data: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    """The level above: neighbours paired, an odd last node carried up as it is."""
    paired = [
        _sha256(b"\x01" + left + right).digest()
        for left, right in zip(level[0::2], level[1::2], strict=False)
    ]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of the leaves (already hashed with ``leaf_hash``)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = leaf_hashes
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 6962 §2.1.1), the leaf's sibling first."""
    return Tree(leaf_hashes).inclusion_proof(index)


class Tree:
    """Every level of a tree, hashed once: the proofs of all of a segment's records (a bundle
    proves each) then cost a few look-ups each instead of rebuilding the tree per proof."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        level = list(leaf_hashes)
        self._levels = [level]
        while len(level) > 1:
            level = _next_level(level)
            self._levels.append(level)

    @property
    def root(self) -> bytes:
        top = self._levels[-1]
        return top[0] if top else EMPTY_ROOT

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index``, the leaf's sibling first."""
        size = len(self._levels[0])
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
        proof: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):  # else: the odd last node, carried up with no sibling
                proof.append(level[sibling])
            index //= 2
        return proof


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows ``leaf_hash`` at ``index`` of the tree of ``tree_size``
    leaves whose root is ``root`` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    result = leaf_hash
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while fn and not fn & 1:  # past levels where this node had no sibling
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the tree's first ``old_size`` leaves are a prefix of it (RFC 6962
    §2.1.2, SUBPROOF unrolled into a loop). Empty when ``old_size`` is 0 or the full size."""
    size = len(leaf_hashes)
    if not 0 <= old_size <= size:
        raise ValueError(f"no tree of {old_size} leaves inside a tree of {size}")
    if old_size in (0, size):
        return []
    # Walk down from the whole tree towards the subtree that ends at old_size, collecting
    # the siblings of the path; they are emitted deepest first.
    siblings: list[bytes] = []
    start, end, m = 0, size, old_size
    whole_old_tree = True  # SUBPROOF's b: the old tree's own root is known to the verifier
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            siblings.append(root(leaf_hashes[start + k : end]))
            end = start + k
        else:
            siblings.append(root(leaf_hashes[start : start + k]))
            start, m = start + k, m - k
            whole_old_tree = False
    if not whole_old_tree:
        siblings.append(root(leaf_hashes[start:end]))
    return siblings[::-1]


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """True when ``proof`` shows the tree of ``old_size`` leaves with ``old_root`` is a
    prefix of the tree of ``new_size`` leaves with ``new_root`` (RFC 9162 §2.1.4.2)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:  # every tree extends the empty one
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:  # past levels where this node had no sibling
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 6962: the largest power of two strictly less than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)
