"""Vectorised word and word n-gram hashes for a batch of normalised texts (numpy, no Python loop per word).

A text here is already normalised (:func:`rewardkit.curate.normalize.normalize`: words separated by one
space). The batch is encoded once; each byte gets a random 64-bit value by a fixed table, multiplied by a
random odd constant for its position in the word (positions past 64 reuse the table), and a word's hash is
the wrapping sum over its bytes. An n-gram's hash is a polynomial of its words' hashes. Equal words give
equal hashes in every batch and every run (fixed seeds); different ones collide with probability about
2**-64 per pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_RNG = np.random.default_rng(20261128)
_BYTE = _RNG.integers(0, 2**63, size=256, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # (256,)
_POS = _RNG.integers(0, 2**63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # (64,)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the n-gram polynomial
_SPACE, _NEWLINE = 32, 10


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, offsets)``: (W,) uint64 one hash per word of all ``texts`` in order, and (N + 1,) int64
    offsets so text ``i``'s words are ``hashes[offsets[i]:offsets[i + 1]]`` (none for an empty text)."""
    counts = np.array([len(t.split(" ")) if t else 0 for t in texts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    joined = "\n".join(t for t in texts if t)
    if not joined:
        return np.zeros(0, dtype=np.uint64), offsets
    data = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)  # (B,)
    is_sep = (data == _SPACE) | (data == _NEWLINE)
    word_id = np.cumsum(is_sep)  # (B,) index of the word each byte belongs to (separators: the next one)
    starts = np.flatnonzero(np.concatenate([[True], is_sep[:-1]]))  # (W,) first byte of each word
    if len(starts) != offsets[-1]:
        raise ValueError("word_hashes needs normalised texts (words separated by single spaces, no newlines)")
    pos = np.arange(len(data)) - starts[word_id]  # (B,) position of the byte in its word
    with np.errstate(over="ignore"):
        values = _BYTE[data] * _POS[pos % 64]  # (B,)
    values[is_sep] = 0
    hashes = np.add.reduceat(values, starts)  # (W,) wrapping sums (separators add 0 to the word before)
    return hashes, offsets


def ngram_hashes(words: np.ndarray, offsets: np.ndarray, n: int, *, short_as_one: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, offsets)`` of every run of ``n`` consecutive words within each text (never across texts):
    (G,) uint64 and (N + 1,) int64 as in :func:`word_hashes`. A text of fewer than ``n`` (but some) words
    has one hash of all its words when ``short_as_one`` (MinHash shingles), none otherwise (n-gram overlap)."""
    lengths = np.diff(offsets)  # (N,) words per text
    windows = np.where(lengths >= n, lengths - n + 1, np.where((lengths > 0) & short_as_one, 1, 0))  # (N,)
    out_offsets = np.concatenate([[0], np.cumsum(windows)])
    text_of = np.repeat(np.arange(len(lengths)), windows)  # (G,)
    first = offsets[:-1][text_of] + (np.arange(out_offsets[-1]) - out_offsets[:-1][text_of])  # (G,) first word
    size = np.minimum(lengths[text_of], n)  # (G,) words in each window
    hashes = np.zeros(len(first), dtype=np.uint64)
    if not len(first):
        return hashes, out_offsets
    with np.errstate(over="ignore"):
        for k in range(n):
            take = k < size
            idx = np.minimum(first + k, len(words) - 1)
            hashes = np.where(take, hashes * _MIX + words[idx], hashes)
    return hashes, out_offsets
