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

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Gap",
    "Tree",
    "consistency_proof",
    "covering_hashes",
    "covering_ranges",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_of_parts",
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


def covering_ranges(start: int, count: int, size: int) -> list[tuple[int, int]]:
    """The nodes of the tree of ``size`` leaves that exactly cover leaves
    [start, start + count), as [lo, hi) ranges from left to right: the largest subtrees
    inside the run, at most two per level, so O(log size) of them."""
    if count < 1 or start < 0 or start + count > size:
        raise ValueError(f"no run of {count} leaves at {start} in a tree of {size}")
    end = start + count
    found: list[tuple[int, int]] = []
    pending = [(0, size)]  # a stack: right halves wait under left ones
    while pending:
        lo, hi = pending.pop()
        if hi <= start or lo >= end:
            continue
        if start <= lo and hi <= end:
            found.append((lo, hi))
            continue
        k = _largest_power_of_two_below(hi - lo)
        pending.append((lo + k, hi))
        pending.append((lo, lo + k))
    return found


def covering_hashes(run: Sequence[bytes], start: int, size: int) -> list[bytes]:
    """The hashes of ``covering_ranges(start, len(run), size)``, from the run's leaves: what a
    verifier needs in place of the leaves themselves to recompute the tree's root."""
    return [root(run[lo - start : hi - start]) for lo, hi in covering_ranges(start, len(run), size)]


@dataclass(frozen=True, slots=True)
class Gap:
    """``count`` consecutive leaves, known only by the subtree hashes that cover them
    (``covering_hashes``, in order)."""

    count: int
    hashes: tuple[bytes, ...]


def root_of_parts(parts: Sequence[bytes | Gap]) -> bytes:
    """The root of the tree whose leaves are ``parts`` in order, each a leaf hash or a Gap of
    leaves given by their covering subtree hashes. ValueError when a Gap does not hold as many
    hashes as its place in the tree needs (damaged)."""
    return Tree(parts).root


class Tree:
    """A tree whose leaves are known (hashes) or known only through the subtree hashes that
    cover a run of them (Gaps, left by retention), hashed once for many proofs: a bundle proves
    every record of a segment, so each proof must cost look-ups, not a new tree."""

    def __init__(self, parts: Sequence[bytes | Gap]) -> None:
        leaves: list[bytes] = []
        self._known: dict[tuple[int, int], bytes] = {}
        self._gap_starts: list[int] = []
        self._gap_ends: list[int] = []
        for part in parts:
            if isinstance(part, Gap):
                self._gap_starts.append(len(leaves))
                self._gap_ends.append(len(leaves) + part.count)
                leaves.extend([b""] * part.count)  # placeholders: never hashed
            else:
                leaves.append(part)
        self._leaves = leaves
        self.size = len(leaves)
        gaps = [part for part in parts if isinstance(part, Gap)]
        for start, part in zip(self._gap_starts, gaps, strict=True):
            ranges = covering_ranges(start, part.count, self.size)
            if len(ranges) != len(part.hashes):
                raise ValueError(
                    f"a run of {part.count} leaves at {start} needs {len(ranges)} subtree "
                    f"hashes, got {len(part.hashes)}"
                )
            self._known.update(zip(ranges, part.hashes, strict=True))
        # Without gaps every level is kept, built bottom-up: a proof is then a look-up per level.
        self._levels: list[list[bytes]] = []
        if not gaps:
            level = leaves
            self._levels.append(level)
            while len(level) > 1:
                level = _next_level(level)
                self._levels.append(level)

    @property
    def root(self) -> bytes:
        if not self.size:
            return EMPTY_ROOT
        return self._levels[-1][0] if self._levels else self._node(0, self.size)

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``; ValueError for one known only through a Gap."""
        self._check(index)
        return self._leaves[index]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` (RFC 6962 §2.1.1), the leaf's sibling first."""
        self._check(index)
        if self._levels:
            proof: list[bytes] = []
            for level in self._levels[:-1]:
                sibling = index ^ 1
                if sibling < len(level):  # else: the odd last node, carried up as it is
                    proof.append(level[sibling])
                index //= 2
            return proof
        # Down from the root: the sibling of each subtree holding the leaf, deepest last. A
        # sibling never lies inside a Gap's covering node without being one (the leaf would
        # then be in the Gap), so every sibling is known or computable.
        siblings: list[bytes] = []
        lo, hi = 0, self.size
        while hi - lo > 1:
            k = _largest_power_of_two_below(hi - lo)
            if index < lo + k:
                siblings.append(self._node(lo + k, hi))
                hi = lo + k
            else:
                siblings.append(self._node(lo, lo + k))
                lo += k
        return siblings[::-1]

    def _check(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise ValueError(f"leaf {index} is not in a tree of {self.size} leaves")
        at = bisect.bisect_right(self._gap_starts, index) - 1
        if at >= 0 and index < self._gap_ends[at]:
            raise ValueError(f"leaf {index} is known only through a subtree hash")

    def _node(self, lo: int, hi: int) -> bytes:
        found = self._known.get((lo, hi))
        if found is not None:
            return found
        first = bisect.bisect_right(self._gap_ends, lo)  # the first gap ending after lo
        if first == len(self._gap_starts) or self._gap_starts[first] >= hi:
            node = root(self._leaves[lo:hi])  # no gap inside: the fast path
        else:
            k = _largest_power_of_two_below(hi - lo)  # hi - lo > 1: a lone gap leaf is known
            node = node_hash(self._node(lo, lo + k), self._node(lo + k, hi))
        self._known[(lo, hi)] = node  # proofs of neighbouring leaves share their siblings
        return node


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 6962: the largest power of two strictly less than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)
