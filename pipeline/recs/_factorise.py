"""Vectorised string-id factorisation: ``np.unique(values, return_inverse=True)`` without sorting strings.

``np.unique`` on a fixed-width unicode array compares whole strings inside its
sort: about 6 s for ten million ids. Here each id's buffer is hashed to 64
bits, only the hashes are sorted (a SIMD integer sort), each id finds its
hash's slot in a bucketed table of the distinct hashes, and only the few
distinct ids are sorted as strings. Every id is then compared word by word
with its slot's representative, so the result is exact: a hash collision is
detected and falls back to ``np.unique``.

Work is done in chunks of :data:`_CHUNK` rows so that the word columns of a
chunk stay in cache across the per-word passes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["factorise", "intern_codes"]

_CHUNK = 1 << 16
_MUL = np.uint64(0x9E3779B97F4A7C15)
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)

Groups = tuple[np.ndarray, np.ndarray]
"""``(representative row of each distinct value, group of each row)``; groups in no particular order."""


def factorise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted distinct values, index of each value in them)``, as ``np.unique(..., return_inverse=True)``.

    ``values`` is a one-dimensional ``str_`` array; the index array is ``intp``.
    """
    uniques, rank, group = _sorted_groups(values)
    return uniques, rank[group]


def intern_codes(values: np.ndarray, intern: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``intern(sorted distinct values)[index of each value]``: map ids through ``intern`` once each.

    ``intern`` sees the distinct values in sorted order (as with ``np.unique``)
    and returns one code per value.
    """
    uniques, rank, group = _sorted_groups(values)
    mapped = np.asarray(intern(uniques.tolist()))
    codes: np.ndarray = mapped[rank][group]
    return codes


def _sorted_groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sorted distinct values, rank of each group in them, group of each value)``."""
    groups = _groups(values)
    if groups is None:
        uniques, inverse = np.unique(values, return_inverse=True)
        return uniques, np.arange(len(uniques)), inverse.reshape(-1)
    rep, group = groups
    reps = values[rep]
    order = np.argsort(reps)
    rank = np.empty(len(order), np.intp)
    rank[order] = np.arange(len(order))
    return reps[order], rank, group


def _words(values: np.ndarray) -> np.ndarray | None:
    """``values``' buffers as a rows×words unsigned array (equal rows ⇔ equal strings), or ``None``."""
    size = values.dtype.itemsize
    if values.ndim != 1 or values.dtype.kind != "U" or size == 0:
        return None
    word = np.uint64 if size % 8 == 0 else np.uint32
    return np.ascontiguousarray(values).view(word).reshape(len(values), -1)


def _groups(values: np.ndarray) -> Groups | None:
    """Distinct values of a ``str_`` array by hash; ``None`` if unsupported or on a hash collision."""
    words = _words(values)
    if words is None or len(values) == 0:
        return None
    hashes = _hash_rows(words)
    distinct = _sorted_distinct(np.sort(hashes))
    group, rep = _slots(distinct, hashes)
    if not _rows_match(words, rep, group):
        return None
    return rep, group


def _hash_rows(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row (multiply-xor over the words, then murmur3's finaliser)."""
    out = np.empty(len(words), np.uint64)
    for lo in range(0, len(words), _CHUNK):
        chunk, acc = words[lo : lo + _CHUNK], out[lo : lo + _CHUNK]
        acc[:] = chunk[:, 0]
        for k in range(1, chunk.shape[1]):
            acc *= _MUL
            acc ^= chunk[:, k]
        acc ^= acc >> _S33
        acc *= _FMIX1
        acc ^= acc >> _S33
        acc *= _FMIX2
        acc ^= acc >> _S33
    return out


def _sorted_distinct(sorted_values: np.ndarray) -> np.ndarray:
    first = np.empty(len(sorted_values), np.bool_)
    first[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=first[1:])
    return sorted_values[first]


def _slots(distinct: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(slot of each hash in sorted distinct, one row per slot)``, via a table of the top hash bits."""
    bits = len(distinct).bit_length() + 1  # 2-4 buckets per distinct hash: few steps
    shift = np.uint64(64 - bits)
    counts = np.bincount((distinct >> shift).astype(np.intp), minlength=1 << bits)
    bucket_start = np.cumsum(counts) - counts
    if len(distinct) < 2**31:
        bucket_start = bucket_start.astype(np.int32)  # a smaller table stays in cache
    slot = np.empty(len(hashes), np.intp)
    rep = np.empty(len(distinct), np.intp)
    for lo in range(0, len(hashes), _CHUNK):
        h, s = hashes[lo : lo + _CHUNK], slot[lo : lo + _CHUNK]
        s[:] = bucket_start[(h >> shift).view(np.int64)]
        miss = np.flatnonzero(distinct[s] != h)
        while len(miss):  # a bucket's hashes are consecutive and sorted: step to the right one
            s[miss] += 1
            miss = miss[distinct[s[miss]] != h[miss]]
        rep[s] = np.arange(lo, lo + len(h))
    return slot, rep


def _rows_match(words: np.ndarray, rep: np.ndarray, slot: np.ndarray) -> bool:
    """Whether every row equals its slot's representative row ``words[rep[slot]]`` (no hash collision)."""
    row = np.dtype((np.void, words.dtype.itemsize * words.shape[1]))
    rep_rows = words[rep].view(row).reshape(-1)  # whole rows as single items: one memcpy per take
    return all(
        np.array_equal(words[lo : lo + _CHUNK], _unpack(np.take(rep_rows, slot[lo : lo + _CHUNK]), words))
        for lo in range(0, len(words), _CHUNK)
    )


def _unpack(rows: np.ndarray, like: np.ndarray) -> np.ndarray:
    return rows.view(like.dtype).reshape(len(rows), like.shape[1])
