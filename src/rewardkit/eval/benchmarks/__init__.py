"""Benchmarks registered by name, each reading its published schema and scoring by its published rules.

Entries are lazy ``"module:attr"`` strings so that listing the benchmarks imports none of them.
"""

from __future__ import annotations

from rewardkit.eval.benchmarks.base import BENCHMARKS, Benchmark, Item, Outcomes, ReadResult, Stat

BENCHMARKS.register_lazy("pairs", "rewardkit.eval.benchmarks.pairs:PairsBenchmark")
BENCHMARKS.register_lazy("rewardbench", "rewardkit.eval.benchmarks.rewardbench:RewardBenchV1")
BENCHMARKS.register_lazy("rewardbench2", "rewardkit.eval.benchmarks.rewardbench2:RewardBenchV2")
BENCHMARKS.register_lazy("rmb", "rewardkit.eval.benchmarks.rmb:RMBBenchmark")
BENCHMARKS.register_lazy("rmbench", "rewardkit.eval.benchmarks.rmbench:RMBench")


def get_benchmark(name: str) -> Benchmark:
    """A fresh instance of the benchmark registered as ``name``."""
    return BENCHMARKS.get(name)()


__all__ = ["BENCHMARKS", "Benchmark", "Item", "Outcomes", "ReadResult", "Stat", "get_benchmark"]
