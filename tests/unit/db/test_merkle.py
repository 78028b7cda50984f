"""db.merkle against RFC 9162 written out independently (tests.integration.db.test_sequencer's
``mth`` and verifiers): roots from stored subtrees and from the frontier, every inclusion and
consistency proof for trees up to 40 leaves, and what the verifiers must refuse. No database."""

from __future__ import annotations

import pytest

from db.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    nodes_for,
    perfect_subtrees,
    range_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.integration.db.test_sequencer import (
    mth,
    rfc_verify_consistency,
    rfc_verify_inclusion,
    sha,
)

LEAVES = [f"entry {n}".encode() for n in range(40)]


def grown(count: int) -> tuple[Frontier, dict[tuple[int, int], bytes]]:
    frontier, store = Frontier(), {}
    for leaf in LEAVES[:count]:
        for level, index, value in frontier.append(leaf_hash(leaf)):
            assert (level, index) not in store  # each node is completed once
            store[(level, index)] = value
    return frontier, store


def test_hashes_are_rfc_9162s() -> None:
    assert leaf_hash(b"x") == sha(b"\x00x")
    assert node_hash(b"a" * 32, b"b" * 32) == sha(b"\x01" + b"a" * 32 + b"b" * 32)
    assert EMPTY_ROOT == mth([]) == Frontier().root()


@pytest.mark.parametrize("size", range(1, 41))
def test_roots_and_proofs_for_every_size(size: int) -> None:
    frontier, store = grown(size)
    root = mth(LEAVES[:size])
    assert frontier.root() == root == range_hash(0, size, store)
    assert frontier.size == size
    # Only complete subtrees are stored: one node per level per aligned block.
    assert len(store) == sum(size >> level for level in range(size.bit_length()))
    reloaded = Frontier(size, [store[node] for node in Frontier.nodes_of(size)])
    assert reloaded.root() == root
    following = reloaded.append(leaf_hash(b"next"))
    assert reloaded.root() == mth([*LEAVES[:size], b"next"])
    assert following[0] == (0, size, leaf_hash(b"next"))
    for index in range(size):
        ranges = inclusion_ranges(index, size)
        wanted = nodes_for(ranges)  # what the sequencer fetches in one query: enough, no more
        assert wanted == {n for a, b in ranges for n in perfect_subtrees(a, b)}
        assert wanted <= store.keys()
        path = [range_hash(a, b, {n: store[n] for n in wanted}) for a, b in ranges]
        assert rfc_verify_inclusion(LEAVES[index], index, size, path, root)
        assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, path, root)
        assert not verify_inclusion(leaf_hash(b"forged"), index, size, path, root)
        assert not verify_inclusion(leaf_hash(LEAVES[index]), index, size, [*path, root], root)
        if path:
            assert not verify_inclusion(leaf_hash(LEAVES[index]), index, size, path[:-1], root)
    for old in range(1, size + 1):
        proof = [range_hash(a, b, store) for a, b in consistency_ranges(old, size)]
        old_root = mth(LEAVES[:old])
        assert verify_consistency(old, size, old_root, root, proof)
        if old < size:
            assert rfc_verify_consistency(old, size, old_root, root, proof)
            assert not verify_consistency(old, size, root, root, proof)
            assert not verify_consistency(old, size, old_root, old_root, proof)
            assert not verify_consistency(old, size, old_root, root, [])
            assert not verify_consistency(old, size, old_root, root, proof[:-1])
            assert not verify_consistency(old, size, old_root, root, [*proof, root])
        else:
            assert proof == []


def test_refusals() -> None:
    """Each refusal names what was wrong (mutation run `merkle`: messages replaced by None and
    the size-0 consistency proof survived a bare ``pytest.raises``)."""
    with pytest.raises(ValueError, match=r"empty or negative range \[3, 3\)"):
        perfect_subtrees(3, 3)
    with pytest.raises(ValueError, match="aligned"):
        perfect_subtrees(1, 3)
    with pytest.raises(ValueError, match="leaf 5 is not in a tree of size 5"):
        inclusion_ranges(5, 5)
    with pytest.raises(ValueError, match="no consistency proof from size 0 to 3"):
        consistency_ranges(0, 3)
    with pytest.raises(ValueError, match="no consistency proof from size 4 to 3"):
        consistency_ranges(4, 3)
    assert Frontier.nodes_of(0) == []
    # A leaf just past the tree: with an empty path it would "prove" itself as a root.
    assert not verify_inclusion(b"x", 1, 1, [], b"x")
    with pytest.raises(ValueError, match="set bit"):
        Frontier(3, [b"x"])
    assert not verify_inclusion(b"x", 3, 3, [], b"x")
    assert not verify_consistency(0, 3, b"", b"", [b"x"])
    assert verify_consistency(3, 3, b"r", b"r", [])
    assert not verify_consistency(3, 3, b"r", b"s", [])
