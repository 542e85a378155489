"""Exact and near-duplicate detection with fixed-size state per record.

Both steps store 8-byte keys with the input line that first had them in a :class:`KeyIndex`: sorted
numpy arrays (16 bytes an entry) plus a small dict of recent inserts, merged every 16,384 inserts -- a
Python dict of ints would take about 130 bytes an entry. :class:`ExactDedup` stores one digest per
distinct key. :class:`NearDedup` is MinHash LSH: each record's word shingles give a MinHash signature,
the signature is cut into ``bands`` bands of ``rows`` values, each band is hashed to one 64-bit int, and a
record whose band hash equals that of an earlier kept record in the same band is its near duplicate.
Only kept records are indexed: ``bands`` × 16 bytes per kept record, nothing else.

Signatures are computed here with numpy, a chunk of records at a time: words and shingles are hashed
vectorised over the chunk (:mod:`rewardkit.curate.hashing`), the ``num_perm`` hash
functions are multiply-shift hashes ``(a·x + b) >> 32`` (wrapping 64-bit arithmetic, ``a`` odd), and the
per-record minimum is ``np.minimum.reduceat`` over the chunk, one permutation at a time (work memory:
one uint64 per shingle of the chunk). Measured back to back in one process on a shared 2-core machine (load average 6-7), 2,000 texts of 80
random words, 128 permutations, two runs: ``datasketch.MinHash.update_batch`` (one MinHash per record,
permutations shared, sha1 per shingle) 1,150 and 1,000 signatures/s; this path 5,200 and 4,400
records/s including normalisation, band hashing and the LSH lookups. With exact + near dedup, peak RSS
grew 0.35 KB per record from 5k to 80k records of 150 words (0.96 KB with dict-based tables).

Why not ``datasketch.MinHashLSH`` as the index: it stores every key's full band byte-strings (``rows`` × 4
or 8 bytes per band) in per-band dicts plus a key -> bands table, many times 16 bytes per band, and it
has no "query, then insert only if new" primitive, which keep-first needs anyway. The band and row
counts are datasketch's (``MinHashLSH(threshold, num_perm).b`` / ``.r``: equal weights for false
positives and negatives), so the S-curve is the one MinHashLSH would use. Candidates are not re-checked
against a stored signature (that would be ``num_perm`` values per kept record): a pair below the
threshold is flagged with the S-curve's small probability, 1 − (1 − J^rows)^bands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rewardkit.curate.hashing import ngram_hashes, word_hashes


class KeyIndex:
    """A keep-first map from 8-byte keys to input lines in 16 bytes an entry: sorted numpy arrays (keys
    uint64, lines int64) plus a dict of recent inserts, merged into the arrays every ``merge_at`` inserts.

    Lookups come in two halves so a chunk of records is searched at once: :meth:`search` (vectorised, the
    sorted arrays only) and :meth:`get` (one key: the array hit, else the recent dict).
    """

    def __init__(self, merge_at: int = 1 << 14) -> None:
        self.merge_at = merge_at
        self._keys = np.zeros(0, dtype=np.uint64)
        self._lines = np.zeros(0, dtype=np.int64)
        self._recent: dict[int, int] = {}

    def search(self, keys: np.ndarray) -> np.ndarray:
        """(N,) int64: the line stored for each key of ``keys`` (N,) uint64 in the sorted arrays, or -1."""
        if not len(self._keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return np.where(self._keys[pos] == keys, self._lines[pos], -1)

    def get(self, key: int, searched: int) -> int | None:
        """The line stored for ``key`` (``searched``: its :meth:`search` result), or None."""
        return searched if searched >= 0 else self._recent.get(key)

    def put(self, key: int, line: int) -> None:
        """Store a key that :meth:`get` did not find."""
        self._recent[key] = line

    def merge(self, *, force: bool = False) -> None:
        """Move the recent inserts into the sorted arrays (when there are ``merge_at`` of them, or ``force``)."""
        if not self._recent or (len(self._recent) < self.merge_at and not force):
            return
        keys = np.concatenate([self._keys, np.fromiter(self._recent.keys(), np.uint64, len(self._recent))])
        lines = np.concatenate([self._lines, np.fromiter(self._recent.values(), np.int64, len(self._recent))])
        order = np.argsort(keys, kind="stable")
        self._keys, self._lines, self._recent = keys[order], lines[order], {}

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    @property
    def nbytes(self) -> int:
        """Bytes held by the sorted arrays (the recent dict, at most ``merge_at`` entries, aside)."""
        return int(self._keys.nbytes + self._lines.nbytes)


class ExactDedup:
    """Keep-first exact duplicates by an 8-byte digest of a key (a :class:`KeyIndex`)."""

    def __init__(self) -> None:
        self._index = KeyIndex()

    def check_many(self, digests: list[int], lines: list[int]) -> list[int | None]:
        """For records in input order: the input line of the earlier record with the same digest, or None
        (then the digest is stored)."""
        searched = self._index.search(np.array(digests, dtype=np.uint64)).tolist()
        out: list[int | None] = []
        for key, line, found in zip(digests, lines, searched, strict=True):
            first = self._index.get(key, found)
            if first is None:
                self._index.put(key, line)
            out.append(first)
        self._index.merge()
        return out

    def check(self, key_digest: int, line: int) -> int | None:
        """:meth:`check_many` for one record."""
        return self.check_many([key_digest], [line])[0]

    def __len__(self) -> int:
        return len(self._index)


@dataclass(frozen=True)
class LshParams:
    """MinHash LSH shape: ``bands`` × ``rows`` <= ``num_perm`` signature values."""

    num_perm: int
    bands: int
    rows: int


def lsh_params(threshold: float, num_perm: int) -> LshParams:
    """Bands and rows for a Jaccard ``threshold`` (datasketch's choice, equal error weights)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return LshParams(num_perm, int(lsh.b), int(lsh.r))


class NearDedup:
    """Keep-first near duplicates by MinHash LSH over word shingles (see the module docstring)."""

    def __init__(self, *, threshold: float, num_perm: int = 128, shingle: int = 5, seed: int = 1) -> None:
        """``shingle``: words per shingle; ``seed``: of the permutations."""
        self.params = lsh_params(threshold, num_perm)
        self.shingle = shingle
        rng = np.random.default_rng(seed)
        self._a = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self._row_mix = rng.integers(0, 2**63, size=self.params.rows, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._tables = [KeyIndex() for _ in range(self.params.bands)]

    def signatures(self, shingles: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """(N, num_perm) MinHash signatures (values below 2**32, as uint64) of N non-empty runs of shingle
        hashes ``shingles`` (S,) uint64 starting at ``starts`` (N,): for each permutation ``(a·x + b) >> 32``
        (multiply-shift), then the minimum over each record's run. One permutation at a time over a
        contiguous (S,) buffer: 8x faster than (S, 16) blocks, measured."""
        out = np.empty((self.params.num_perm, len(starts)), dtype=np.uint64)
        buf = np.empty(len(shingles), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(self.params.num_perm):
                np.multiply(shingles, self._a[j], out=buf)
                buf += self._b[j]
                buf >>= np.uint64(32)
                out[j] = np.minimum.reduceat(buf, starts)
        return out.T

    def band_hashes(self, signatures: np.ndarray) -> np.ndarray:
        """(N, bands) uint64: each band of ``signatures`` (N, num_perm) hashed to one 64-bit int
        (a random odd multiplier per row, summed with wrapping arithmetic)."""
        b, r = self.params.bands, self.params.rows
        bands = signatures[:, : b * r].reshape(len(signatures), b, r)
        with np.errstate(over="ignore"):
            return (bands * self._row_mix).sum(axis=2, dtype=np.uint64)

    def check_many(self, texts: list[str], lines: list[int]) -> list[int | None]:
        """For records in input order (``texts`` normalised, see :func:`~rewardkit.curate.normalize.normalize`):
        the input line of an earlier kept near duplicate (earlier in this batch or before it), or None (then
        the record is indexed). An empty text is never a duplicate."""
        words, offsets = word_hashes(texts)
        shingles, sh_offsets = ngram_hashes(words, offsets, self.shingle, short_as_one=True)
        full = np.flatnonzero(np.diff(sh_offsets) > 0)  # (M,) records with at least one shingle
        out: list[int | None] = [None] * len(texts)
        if not len(full):
            return out
        hashes = self.band_hashes(self.signatures(shingles, sh_offsets[full]))  # (M, bands)
        searched = np.stack([t.search(hashes[:, j]) for j, t in enumerate(self._tables)], axis=1).tolist()
        for k, keys, found in zip(full.tolist(), hashes.tolist(), searched, strict=True):
            out[k] = self._check_bands(keys, found, lines[k])
        for table in self._tables:
            table.merge()
        return out

    def check(self, text: str, line: int) -> int | None:
        """:meth:`check_many` for one record (``text`` normalised)."""
        return self.check_many([text], [line])[0]

    def _check_bands(self, keys: list[int], found: list[int], line: int) -> int | None:
        for table, key, hit in zip(self._tables, keys, found, strict=True):
            first = table.get(key, hit)
            if first is not None:
                return first
        for table, key in zip(self._tables, keys, strict=True):
            table.put(key, line)
        return None

    @property
    def nbytes(self) -> int:
        """Bytes held by the band tables' sorted arrays."""
        return sum(t.nbytes for t in self._tables)
