"""Exact and near-duplicate detection with fixed-size state per record.

:class:`ExactDedup` keeps one 8-byte digest per distinct key (in a dict to the input line that first had
it). :class:`NearDedup` is MinHash LSH: each record's word shingles give a MinHash signature
(``datasketch.MinHash.update_batch``, vectorised over the shingles, with the permutations drawn once and
shared), the signature is cut into ``bands`` bands of ``rows`` values, and each band is hashed to one
8-byte int. A record whose band hash equals a band hash of an earlier kept record in the same band is its
near duplicate. Only kept records are indexed: ``bands`` ints per kept record, nothing else.

Why not ``datasketch.MinHashLSH``: it stores every key's full band byte-strings (``rows`` × 4 or 8 bytes
per band) in per-band dicts plus a key -> bands table, several times the memory of one int per band,
and it has no "query, then insert only if new" primitive, which keep-first needs anyway. The band and
row counts are datasketch's own choice for the threshold (``datasketch.lsh._optimal_param``, equal
weights for false positives and false negatives), so the S-curve is the one MinHashLSH would use.
Candidates are not re-checked against a stored signature (that would be ``num_perm`` values per kept
record): a pair below the threshold is flagged with the S-curve's small probability.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


class ExactDedup:
    """Keep-first exact duplicates by an 8-byte digest of a key."""

    def __init__(self) -> None:
        self._first: dict[int, int] = {}

    def check(self, key_digest: int, line: int) -> int | None:
        """The input line of the earlier record with the same digest, or None (then this one is indexed)."""
        first = self._first.setdefault(key_digest, line)
        return None if first == line else first

    def __len__(self) -> int:
        return len(self._first)


@dataclass(frozen=True)
class LshParams:
    """MinHash LSH shape: ``bands`` × ``rows`` <= ``num_perm`` signature values."""

    num_perm: int
    bands: int
    rows: int


def lsh_params(threshold: float, num_perm: int) -> LshParams:
    """Bands and rows for a Jaccard ``threshold`` (datasketch's optimiser, equal error weights)."""
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, 0.5, 0.5)
    return LshParams(num_perm, int(bands), int(rows))


class NearDedup:
    """Keep-first near duplicates by MinHash LSH over word shingles (see the module docstring)."""

    def __init__(self, *, threshold: float, num_perm: int = 128, seed: int = 1) -> None:
        from datasketch import MinHash

        self.params = lsh_params(threshold, num_perm)
        self._template = MinHash(num_perm=num_perm, seed=seed)
        self._tables: list[dict[int, int]] = [{} for _ in range(self.params.bands)]

    def signature(self, shingles: set[bytes]) -> np.ndarray:
        """(num_perm,) unsigned MinHash signature of a shingle set (all-max for an empty set)."""
        from datasketch import MinHash

        m = MinHash(num_perm=self.params.num_perm, seed=self._template.seed,
                    permutations=self._template.permutations, scheme=self._template.scheme)
        m.update_batch(list(shingles))
        return m.hashvalues

    def band_hashes(self, signature: np.ndarray) -> list[int]:
        """(bands,) one 8-byte int per band of ``signature``."""
        r = self.params.rows
        raw = np.ascontiguousarray(signature[: self.params.bands * r]).tobytes()
        step = len(raw) // self.params.bands
        return [int.from_bytes(hashlib.blake2b(raw[i:i + step], digest_size=8).digest(), "little")
                for i in range(0, self.params.bands * step, step)]

    def check(self, shingles: set[bytes], line: int) -> int | None:
        """The input line of an earlier kept near duplicate, or None (then this record is indexed)."""
        if not shingles:
            return None
        bands = self.band_hashes(self.signature(shingles))
        for table, h in zip(self._tables, bands, strict=True):
            hit = table.get(h)
            if hit is not None:
                return hit
        for table, h in zip(self._tables, bands, strict=True):
            table[h] = line
        return None
