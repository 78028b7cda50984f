"""Merkle tree hashes and proofs of RFC 9162 §2.1 (Certificate Transparency v2), over a store.

The audit journal's entries are the leaves, in sequence order (leaf index = sequence - 1). The
sequencer stores every complete subtree's hash, ``(level, index)`` covering leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Any tree size's
root and any inclusion or consistency proof is then a handful of those nodes, fetched in one
query per proof: :func:`perfect_subtrees` names them, and the hashes of the incomplete right
edges are computed from them (§2.1.1: ``MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``
with ``k`` the largest power of two below ``n``).

The functions here are pure: a store is a mapping from ``(level, index)`` to 32 bytes.
Verification (:func:`verify_inclusion`, :func:`verify_consistency`) follows §2.1.3.2 and
§2.1.4.2 and uses nothing else of this module, so that a client can copy it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "consistency_ranges",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "nodes_for",
    "perfect_subtrees",
    "range_hash",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # leaves [start, end)


def leaf_hash(data: bytes) -> bytes:
    """``HASH(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``HASH(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[Node]:
    """The stored nodes whose hashes make ``MTH(D[start:end])``, left to right.

    ``start`` must be a multiple of the largest power of two not above ``end - start`` (true of
    every range the proofs of §2.1 ask for): the range splits into aligned complete subtrees by
    the binary digits of its length.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    nodes: list[Node] = []
    position = start
    remaining = end - start
    while remaining:
        level = remaining.bit_length() - 1
        size = 1 << level
        if position % size:
            raise ValueError(f"range [{start}, {end}) is not aligned as RFC 9162 splits it")
        nodes.append((level, position >> level))
        position += size
        remaining -= size
    return nodes


def range_hash(start: int, end: int, nodes: Mapping[Node, bytes]) -> bytes:
    """``MTH(D[start:end])`` from stored complete subtrees (see :func:`perfect_subtrees`)."""
    hashes = [nodes[node] for node in perfect_subtrees(start, end)]
    # D[k:n] is split at the largest power of two again and again: the rightmost subtrees
    # combine first.
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes are ``PATH(index, D[size])`` (§2.1.3.1), leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()
    return path


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The ranges whose hashes are ``PROOF(old_size, D[new_size])`` (§2.1.4.1), in order."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    proof: list[Range] = []
    start, end, m, whole = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append((start + k, end))
            end = start + k
        else:
            proof.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append((start, end))
    proof.reverse()
    return proof


def nodes_for(ranges: Iterable[Range]) -> set[Node]:
    """Every stored node the hashes of ``ranges`` need (one query's worth)."""
    return {node for start, end in ranges for node in perfect_subtrees(start, end)}


class Frontier:
    """The right edge of a growing tree: the roots of its complete subtrees, one per set bit
    of its size. Appending a leaf returns the nodes it completed (level 0 first), ready to
    store; :meth:`root` is ``MTH`` of the leaves so far."""

    def __init__(self, size: int = 0, edge: Sequence[bytes] = ()) -> None:
        # edge[i] is the subtree of the i-th set bit of size, from the highest bit down.
        if len(edge) != bin(size).count("1"):
            raise ValueError("a frontier needs one hash per set bit of its size")
        self.size = size
        self._edge = list(edge)

    @staticmethod
    def nodes_of(size: int) -> list[Node]:
        """The stored nodes a frontier of ``size`` is loaded from (highest level first)."""
        return perfect_subtrees(0, size) if size else []

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return ``(level, index, hash)`` of every node it completes."""
        index = self.size
        completed = [(0, index, leaf)]
        current = leaf
        level = 0
        # Each trailing one bit of the old size is a left sibling waiting for this leaf.
        while (index >> level) & 1:
            current = node_hash(self._edge.pop(), current)
            level += 1
            completed.append((level, index >> level, current))
        self._edge.append(current)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """``MTH`` of the leaves appended so far."""
        if not self._edge:
            return EMPTY_ROOT
        result = self._edge[-1]
        for left in reversed(self._edge[:-1]):
            result = node_hash(left, result)
        return result


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove leaf hash ``leaf`` at ``index`` in ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the tree of ``old_root`` is a prefix of
    ``new_root``'s?"""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
