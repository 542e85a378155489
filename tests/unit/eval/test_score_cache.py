"""The SQLite score cache: namespaces, round trips, persistence across connections."""

from __future__ import annotations

import numpy as np

from rewardkit.eval.cache import ScoreCache, stable_hash


def test_round_trip_and_namespaces(tmp_path) -> None:
    value = float(np.float32(0.1234567))
    with ScoreCache(tmp_path, {"kind": "rm", "fingerprint": "abc", "max_length": 512}) as cache:
        cache.put_many([("k1", value, False), ("k2", -3.5, True)])
        assert cache.get_many(["k1", "k2", "k3"]) == {"k1": (value, False), "k2": (-3.5, True)}
        assert len(cache) == 2
    with ScoreCache(tmp_path, {"kind": "rm", "fingerprint": "abc", "max_length": 512}) as again:
        got = again.get_many(["k1"])["k1"][0]
        assert np.float32(got) == np.float32(value)  # bit-identical float32 after the round trip
    with ScoreCache(tmp_path, {"kind": "rm", "fingerprint": "abc", "max_length": 256}) as other:
        assert other.get_many(["k1", "k2"]) == {}  # another max length is another namespace


def test_many_keys_and_stable_hash(tmp_path) -> None:
    with ScoreCache(tmp_path, {"x": 1}) as cache:
        cache.put_many((f"k{i}", float(i), False) for i in range(1200))
        assert len(cache.get_many([f"k{i}" for i in range(1300)])) == 1200
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})
    assert stable_hash(["x"]) != stable_hash(["y"])
