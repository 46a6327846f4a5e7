"""RFC 6962 trees: the Certificate Transparency reference vectors, then properties."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesentinel.vault import merkle

# The RFC 6962 reference data Certificate Transparency and transparency-dev/merkle test with:
# eight leaves, the root of each prefix of them, and some published proofs (typed as data).
LEAF_DATA = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (index, tree size, audit path)
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
LEAVES = [merkle.leaf_hash(data) for data in LEAF_DATA]


def _hashes(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def _tree(size: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_root_of_every_prefix_matches_rfc6962(size: int) -> None:
    assert merkle.root(LEAVES[:size]).hex() == ROOTS[size]


def test_leaf_and_node_hashes_are_prefixed() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(LEAVES[0], LEAVES[1]).hex() == ROOTS[2]
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_reference(index: int, size: int, path: list[str]) -> None:
    proof = merkle.inclusion_proof(LEAVES[:size], index)
    assert proof == _hashes(path)
    root = bytes.fromhex(ROOTS[size])
    assert merkle.verify_inclusion(LEAVES[index], index, size, proof, root)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_reference(old: int, new: int, path: list[str]) -> None:
    proof = merkle.consistency_proof(LEAVES[:new], old)
    assert proof == _hashes(path)
    old_root, new_root = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
    assert merkle.verify_consistency(old, new, proof, old_root, new_root)
    assert not merkle.verify_consistency(old, new, proof, new_root, old_root) or old == new


def test_a_large_tree_is_built_without_recursion() -> None:
    leaves = _tree(100_003)
    root = merkle.root(leaves)
    proof = merkle.inclusion_proof(leaves, 77_777)
    assert len(proof) == 17
    assert merkle.verify_inclusion(leaves[77_777], 77_777, len(leaves), proof, root)


def test_out_of_range_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_proof(_tree(3), 3)
    with pytest.raises(ValueError, match="no tree of 4"):
        merkle.consistency_proof(_tree(3), 4)
    root = merkle.root(_tree(3))
    assert not merkle.verify_inclusion(_tree(3)[0], -1, 3, [], root)
    assert not merkle.verify_inclusion(_tree(3)[0], 3, 3, [], root)
    assert not merkle.verify_consistency(4, 3, [], root, root)


def _path_shape(index: int, size: int) -> list[bytes]:
    return merkle.inclusion_proof(_tree(size), index) if 0 <= index < size else []


def test_the_size_is_bound_by_the_signed_root_not_by_the_proof() -> None:
    # Leaf 0's path has the same shape in trees of 3 and 4 leaves, so a size-4 proof also
    # "verifies" as size 3 against the size-4 root: the size must come from a signed
    # checkpoint beside the root, never from whoever hands over the proof.
    leaves = _tree(4)
    proof = merkle.inclusion_proof(leaves, 0)
    assert merkle.verify_inclusion(leaves[0], 0, 3, proof, merkle.root(leaves))
    assert not merkle.verify_inclusion(leaves[0], 0, 3, proof, merkle.root(leaves[:3]))


def test_a_proof_too_short_for_the_claimed_size_fails() -> None:
    # The path and roots all match a 2-leaf tree; only the size says 3, and it is refused.
    leaves = _tree(2)
    root = merkle.root(leaves)
    assert not merkle.verify_inclusion(leaves[0], 0, 3, merkle.inclusion_proof(leaves, 0), root)
    proof = merkle.consistency_proof(leaves, 1)
    assert merkle.verify_consistency(1, 2, proof, leaves[0], root)
    assert not merkle.verify_consistency(1, 3, proof, leaves[0], root)


def test_the_empty_tree_is_consistent_with_every_tree_and_nothing_else() -> None:
    root = merkle.root(_tree(5))
    assert merkle.consistency_proof(_tree(5), 0) == []
    assert merkle.verify_consistency(0, 5, [], merkle.EMPTY_ROOT, root)
    assert not merkle.verify_consistency(0, 5, [], root, root)
    assert not merkle.verify_consistency(0, 5, [root], merkle.EMPTY_ROOT, root)


@given(size=st.integers(1, 300), data=st.data())
def test_every_inclusion_proof_verifies_and_nothing_else_does(
    size: int, data: st.DataObject
) -> None:
    leaves = _tree(size)
    index = data.draw(st.integers(0, size - 1))
    root = merkle.root(leaves)
    proof = merkle.inclusion_proof(leaves, index)
    assert merkle.verify_inclusion(leaves[index], index, size, proof, root)

    other_leaf = merkle.leaf_hash(b"not in the tree")
    assert not merkle.verify_inclusion(other_leaf, index, size, proof, root)
    if size > 1:
        other_index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        assert not merkle.verify_inclusion(leaves[index], other_index, size, proof, root)
    for other_size in (size - 1, size + 1, 2 * size):
        if len(_path_shape(index, other_size)) != len(proof):
            assert not merkle.verify_inclusion(leaves[index], index, other_size, proof, root)
    if proof:
        changed = list(proof)
        position = data.draw(st.integers(0, len(proof) - 1))
        changed[position] = bytes([changed[position][0] ^ 1]) + changed[position][1:]
        assert not merkle.verify_inclusion(leaves[index], index, size, changed, root)
        assert not merkle.verify_inclusion(leaves[index], index, size, proof[:-1], root)
    assert not merkle.verify_inclusion(leaves[index], index, size, [*proof, root], root)


@given(new_size=st.integers(1, 300), data=st.data())
def test_every_consistency_proof_verifies_and_nothing_else_does(
    new_size: int, data: st.DataObject
) -> None:
    leaves = _tree(new_size)
    old_size = data.draw(st.integers(1, new_size))
    old_root, new_root = merkle.root(leaves[:old_size]), merkle.root(leaves)
    proof = merkle.consistency_proof(leaves, old_size)
    assert merkle.verify_consistency(old_size, new_size, proof, old_root, new_root)

    # A rewritten history: the same sizes, one old leaf changed.
    forked = list(leaves)
    forked[data.draw(st.integers(0, old_size - 1))] = merkle.leaf_hash(b"rewritten")
    forked_root = merkle.root(forked[:old_size])
    assert not merkle.verify_consistency(old_size, new_size, proof, forked_root, new_root)
    if old_size < new_size:
        assert not merkle.verify_consistency(old_size, new_size, proof, old_root, old_root)
        if len(merkle.consistency_proof(_tree(new_size + 1), old_size)) != len(proof):
            assert not merkle.verify_consistency(old_size, new_size + 1, proof, old_root, new_root)
        assert not merkle.verify_consistency(old_size, new_size, proof[:-1], old_root, new_root)
        changed = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        assert not merkle.verify_consistency(old_size, new_size, changed, old_root, new_root)


def test_public_names_are_pinned() -> None:
    assert sorted(merkle.__all__) == [
        "EMPTY_ROOT",
        "Gap",
        "HASH_SIZE",
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


@given(st.data())
def test_a_run_of_leaves_given_by_its_covering_subtrees_gives_the_same_root(
    data: st.DataObject,
) -> None:
    size = data.draw(st.integers(1, 600))
    start = data.draw(st.integers(0, size - 1))
    count = data.draw(st.integers(1, size - start))
    leaves = _tree(size)
    hashes = merkle.covering_hashes(leaves[start : start + count], start, size)
    assert len(hashes) <= 2 * size.bit_length()  # O(log n), not O(count)
    ranges = merkle.covering_ranges(start, count, size)
    assert [r for lo, hi in ranges for r in range(lo, hi)] == list(range(start, start + count))
    parts = [*leaves[:start], merkle.Gap(count, tuple(hashes)), *leaves[start + count :]]
    assert merkle.root_of_parts(parts) == merkle.root(leaves)
    # One hash changed, dropped, or the run moved by a leaf: another root, or refused.
    changed = [bytes([hashes[0][0] ^ 1]) + hashes[0][1:], *hashes[1:]]
    bad = [*leaves[:start], merkle.Gap(count, tuple(changed)), *leaves[start + count :]]
    assert merkle.root_of_parts(bad) != merkle.root(leaves)
    if len(hashes) > 1:
        short = [*leaves[:start], merkle.Gap(count, tuple(hashes[1:])), *leaves[start + count :]]
        with pytest.raises(ValueError, match="subtree hashes"):
            merkle.root_of_parts(short)
    if start + count < size:
        moved = [
            *leaves[: start + 1],
            merkle.Gap(count, tuple(hashes)),
            *leaves[start + count + 1 :],
        ]
        with contextlib.suppress(ValueError):  # its hashes may not even fit there
            assert merkle.root_of_parts(moved) != merkle.root(leaves)


@given(st.data())
def test_proofs_of_the_leaves_around_gaps_verify(data: st.DataObject) -> None:
    """A bundle proves a thinned segment's remaining records: their audit paths, taken from a
    tree that knows the removed runs only by their covering hashes, are the full tree's."""
    size = data.draw(st.integers(2, 300))
    start = data.draw(st.integers(0, size - 2))
    count = data.draw(st.integers(1, size - start - 1))  # at least one leaf stays
    leaves = _tree(size)
    hashes = merkle.covering_hashes(leaves[start : start + count], start, size)
    tree = merkle.Tree([*leaves[:start], merkle.Gap(count, tuple(hashes)),
                        *leaves[start + count :]])  # fmt: skip
    full = merkle.Tree(leaves)
    assert tree.root == full.root == merkle.root(leaves)
    for index in range(size):
        if start <= index < start + count:
            with pytest.raises(ValueError, match="only through a subtree hash"):
                tree.inclusion_proof(index)
            continue
        proof = tree.inclusion_proof(index)
        assert proof == full.inclusion_proof(index) == merkle.inclusion_proof(leaves, index)
        assert tree.leaf(index) == leaves[index]
        assert merkle.verify_inclusion(leaves[index], index, size, proof, tree.root)


def test_a_whole_segment_of_events_takes_a_few_subtree_hashes() -> None:
    # A segment: its record, 37 facets, 2,048 events, 5 incident states.
    size = 1 + 37 + 2048 + 5
    assert len(merkle.covering_ranges(38, 2048, size)) <= 22
    with pytest.raises(ValueError, match="no run"):
        merkle.covering_ranges(2000, 200, size)
