"""Normalisation, exact keys and MinHash near deduplication on hand-made texts."""

from __future__ import annotations

import numpy as np
import pytest
from curate_files import words

from rewardkit.curate.dedup import ExactDedup, NearDedup, lsh_params
from rewardkit.curate.hashing import ngram_hashes, word_hashes
from rewardkit.curate.normalize import digest, normalize, pair_key, word_ngrams


def test_normalize_folds_case_width_and_whitespace() -> None:
    assert normalize("  Hello\n\t WORLD ") == "hello world"
    assert normalize("ＡＢＣ straße") == "abc strasse"  # NFKC full-width letters, casefold ß -> ss
    assert normalize("a\u00a0b\u2003c") == "a b c"  # no-break and em spaces are whitespace too
    assert pair_key(*map(normalize, ("Hi  there", "A", "B"))) == pair_key("hi there", "a", "b")
    assert pair_key("a", "b c", "d") != pair_key("a b", "c", "d")  # the separator keeps fields apart


def test_digest_is_8_bytes_and_stable() -> None:
    d = digest("hello world")
    assert 0 <= d < 2**64 and d == digest("hello world") and d != digest("hello  world")


def test_word_ngrams() -> None:
    assert list(word_ngrams(["a", "b", "c", "d"], 3)) == ["a b c", "b c d"]
    assert list(word_ngrams(["a", "b"], 3)) == []


def test_exact_dedup_keeps_first_line() -> None:
    d = ExactDedup()
    assert d.check(7, 1) is None and d.check(8, 2) is None
    assert d.check(7, 5) == 1  # duplicate of line 1
    assert len(d) == 2


def test_lsh_params_are_datasketchs_choice() -> None:
    p = lsh_params(0.8, 128)
    assert (p.bands, p.rows) == (9, 13)  # datasketch MinHashLSH(threshold=0.8, num_perm=128).b / .r


def test_near_duplicate_one_word_changed_removed_at_08_kept_at_099() -> None:
    # 200 distinct words; one changed touches 5 of 196 five-word shingles: Jaccard 191/201 = 0.950.
    # LSH candidate probability 1 - (1 - J^r)^b: threshold 0.8 (b=9, r=13): 0.998; threshold 0.99 with
    # 512 permutations (b=3, r=170): 0.0005
    base = words(200, "w")
    variant = base.replace("w100 ", "changed ")
    for threshold, num_perm, expected in ((0.8, 128, 1), (0.99, 512, None)):
        near = NearDedup(threshold=threshold, num_perm=num_perm, seed=1)
        assert near.check(base, 1) is None
        assert near.check(variant, 2) == expected


def test_non_duplicate_below_threshold_kept() -> None:
    # half the words shared: Jaccard of shingles 96/304 = 0.32, far below 0.8
    a = words(200, "w")
    b = " ".join([*a.split()[:100], *words(100, "x").split()])
    near = NearDedup(threshold=0.8, seed=1)
    texts = [a, b, normalize(a.upper()), ""]
    assert near.check_many(texts, [1, 2, 3, 4]) == [None, None, 1, None]  # line 3 is a copy of line 1 in the same batch; an empty text is never a dup


def test_word_and_ngram_hashes_follow_word_runs() -> None:
    words, offsets = word_hashes(["a b c", "", "b c d e", "a", "é b"])
    assert offsets.tolist() == [0, 3, 3, 7, 8, 10]
    assert words[0] == words[7] and words[1] == words[3] == words[9] and words[0] != words[1]
    assert words[8] != words[0]  # "é" (two UTF-8 bytes) is its own word
    grams, g_off = ngram_hashes(words, offsets, 3, short_as_one=True)
    assert g_off.tolist() == [0, 1, 1, 3, 4, 5]  # "a b c" | - | "b c d", "c d e" | "a" | "é b"
    assert grams[3] == words[7]  # a one-word text's shingle is the polynomial of one word: the word itself
    strict, s_off = ngram_hashes(words, offsets, 3, short_as_one=False)
    assert s_off.tolist() == [0, 1, 1, 3, 3, 3] and (strict == grams[:3]).all()
    again, _ = ngram_hashes(*word_hashes(["x b c d"]), 3, short_as_one=False)
    assert again[1] == grams[1]  # "b c d" hashes the same in another batch and position
    assert ngram_hashes(*word_hashes(["c b a"]), 3, short_as_one=False)[0][0] != grams[0]  # order matters
    with pytest.raises(ValueError, match="normalised"):
        word_hashes(["a\nb"])


def test_signature_is_the_minimum_over_shingles() -> None:
    near = NearDedup(threshold=0.8, num_perm=16, seed=0)
    x = np.array([3, 1 << 40, 77, 5], dtype=np.uint64)
    sig = near.signatures(x, np.array([0, 3]))  # records: x[0:3] and x[3:4]
    # reference in Python integers: every (a·x + b) mod 2**64 >> 32 by hand, then the minimum
    for row, values in ((0, x[:3]), (1, x[3:])):
        ref = [min(((int(a) * int(v) + int(b)) % 2**64) >> 32 for v in values)
               for a, b in zip(near._a, near._b, strict=True)]
        assert sig[row].tolist() == ref


def test_key_index_keeps_first_across_merges() -> None:
    from rewardkit.curate.dedup import KeyIndex

    index = KeyIndex(merge_at=2)
    keys = np.array([5, 2**63 + 1, 9], dtype=np.uint64)
    assert index.search(keys).tolist() == [-1, -1, -1]
    index.put(5, 1)
    index.put(2**63 + 1, 2)
    index.merge()  # 2 recent inserts: moved into the sorted arrays
    index.put(9, 3)  # stays recent
    found = index.search(keys).tolist()
    assert found == [1, 2, -1]
    assert [index.get(int(k), f) for k, f in zip(keys, found, strict=True)] == [1, 2, 3]
    assert len(index) == 3 and index.nbytes == 32
    index.merge(force=True)
    assert index.search(keys).tolist() == [1, 2, 3]


def test_exact_dedup_within_one_batch() -> None:
    d = ExactDedup()
    assert d.check_many([4, 5, 4, 4], [10, 11, 12, 13]) == [None, None, 10, 10]
    assert d.check(5, 20) == 11
