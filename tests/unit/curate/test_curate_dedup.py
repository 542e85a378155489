"""Normalisation, exact keys and MinHash near deduplication on hand-made texts."""

from __future__ import annotations

from curate_files import words

from rewardkit.curate.dedup import ExactDedup, NearDedup, lsh_params
from rewardkit.curate.normalize import digest, normalize, pair_key, shingles, word_ngrams


def test_normalize_folds_case_width_and_whitespace() -> None:
    assert normalize("  Hello\n\t WORLD ") == "hello world"
    assert normalize("ＡＢＣ straße") == "abc strasse"  # NFKC full-width letters, casefold ß -> ss
    assert pair_key("Hi  there", "A", "B") == pair_key("hi there", "a", "b")
    assert pair_key("a", "b c", "d") != pair_key("a b", "c", "d")  # the separator keeps fields apart


def test_digest_is_8_bytes_and_stable() -> None:
    d = digest("hello world")
    assert 0 <= d < 2**64 and d == digest("hello world") and d != digest("hello  world")


def test_word_ngrams_and_shingles() -> None:
    assert list(word_ngrams(["a", "b", "c", "d"], 3)) == ["a b c", "b c d"]
    assert list(word_ngrams(["a", "b"], 3)) == []
    assert shingles("A b  C", 2) == {b"a b", b"b c"}
    assert shingles("one two", 5) == {b"one two"}  # shorter than n: itself
    assert shingles("   ", 5) == set()


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
        assert near.check(shingles(base, 5), 1) is None
        assert near.check(shingles(variant, 5), 2) == expected


def test_non_duplicate_below_threshold_kept() -> None:
    # half the words shared: Jaccard of shingles 96/304 = 0.32, far below 0.8
    a = words(200, "w")
    b = " ".join([*a.split()[:100], *words(100, "x").split()])
    near = NearDedup(threshold=0.8, seed=1)
    assert near.check_many([shingles(a, 5), shingles(b, 5), shingles(a, 5), set()], [1, 2, 3, 4]) == \
        [None, None, 1, None]  # line 3 is a copy of line 1 in the same batch; an empty text is never a dup
