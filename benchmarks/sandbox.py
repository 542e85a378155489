"""Code-sandbox throughput: rewardkit's bubblewrap sandbox vs rewardkit 0.1's sandbox, in one run.

The baseline is 0.1's real code: ``git show b16247b:src/rewardkit/infer/sandbox.py`` written to the
work folder and imported as a module (unshare + setpriv + a tmpfs + rlimits + audit hook). Both run the
same two workloads through ``run_python(code, tests=..., limits=...)``:

- ``trivial``: a one-line solution and one assert;
- ``file100``: a solution and a test file of 100 small test functions run by a tiny runner (one snippet).

Each snippet is one sandboxed process (one bwrap start for the new sandbox). Runs alternate (0.1, new,
0.1, new, ...) in rounds of ``--snippets`` snippets each; each side keeps its best round, since other
users' work on a shared machine only ever adds time. Every run must pass all its tests (checked).
``--workers`` > 1 runs a round's snippets from that many threads, as the ``verifier`` scorer does.

Prints one JSON object on stdout (progress goes to stderr): settings (with the load average), each
system's isolation, snippets/s per workload and system, and the new/0.1 ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from _common import run_json_main

REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "b16247b"
BASELINE_PATH = "src/rewardkit/infer/sandbox.py"

SOLUTION = "def add(a, b):\n    return a + b\n"
TRIVIAL_TESTS = ["assert add(1, 2) == 3"]
FILE100 = ("".join(f"def test_{i}():\n    assert add({i}, {i + 1}) == {2 * i + 1}\n\n" for i in range(100))
           + "ran = 0\nfor name, fn in list(globals().items()):\n    if name.startswith('test_'):\n"
           + "        fn()\n        ran += 1\nassert ran == 100, ran\n")
WORKLOADS = {"trivial": (SOLUTION, TRIVIAL_TESTS), "file100": (SOLUTION, [FILE100])}


def log(message: str) -> None:
    print(f"[sandbox] {message}", file=sys.stderr, flush=True)


def load_baseline(workdir: Path) -> ModuleType:
    """0.1's sandbox module, from git, imported under its own name."""
    source = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:{BASELINE_PATH}"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    path = workdir / "rewardkit_0_1_sandbox.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("rewardkit_0_1_sandbox", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def one_round(module: ModuleType, workload: str, snippets: int, workers: int, python: str) -> float:
    """Seconds to run ``snippets`` snippets of ``workload``; every run must pass all its tests."""
    code, tests = WORKLOADS[workload]
    limits = module.SandboxLimits(cpu_s=10, wall_s=30, python=python)

    def one(_: int) -> None:
        result = module.run_python(code, tests=tests, limits=limits)
        report = result.report or {}
        if result.status != "ok" or report.get("passed") != len(tests):
            raise RuntimeError(f"{module.__name__} failed the {workload} snippet: {result}")

    t0 = time.perf_counter()
    if workers == 1:
        for i in range(snippets):
            one(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(snippets)))
    return time.perf_counter() - t0


def measure(systems: dict[str, ModuleType], snippets: int, rounds: int, workers: int,
            python: str) -> dict[str, dict[str, list[float]]]:
    """Alternating rounds of every system on every workload: {system: {workload: [seconds per round]}}."""
    times: dict[str, dict[str, list[float]]] = {name: {w: [] for w in WORKLOADS} for name in systems}
    for workload in WORKLOADS:
        for r in range(rounds):
            for name, module in systems.items():
                seconds = one_round(module, workload, snippets, workers, python)
                times[name][workload].append(seconds)
                log(f"{workload} round {r + 1}/{rounds} {name}: {snippets / seconds:.1f} snippets/s")
    return times


def summary(seconds: list[float], snippets: int) -> dict[str, float]:
    best = min(seconds)
    return {"snippets_per_s": round(snippets / best, 2), "ms_per_snippet": round(1000 * best / snippets, 1),
            "rounds_s": [round(s, 3) for s in seconds]}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from rewardkit.verify import sandbox

    if not sandbox.isolation(args.python)["bwrap"]:
        raise SystemExit(f"the new sandbox cannot run here: {sandbox._plan(args.python).problem}")
    baseline = load_baseline(workdir)
    systems = {"rewardkit_0_1": baseline, "rewardkit": sandbox}
    load_before = os.getloadavg()
    log(f"load average {load_before}; warming up")
    for module in systems.values():
        one_round(module, "trivial", 2, 1, args.python)
    times = measure(systems, args.snippets, args.rounds, args.workers, args.python)
    results = {name: {w: summary(t, args.snippets) for w, t in per.items()} for name, per in times.items()}
    bwrap_version = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "settings": {"snippets_per_round": args.snippets, "rounds": args.rounds, "workers": args.workers,
                     "baseline": f"git show {BASELINE_COMMIT}:{BASELINE_PATH}", "python": args.python,
                     "machine": platform.machine(), "cpus": os.cpu_count(), "bwrap": bwrap_version,
                     "euid": os.geteuid(), "load_average_before": [round(x, 2) for x in load_before],
                     "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "isolation": {"rewardkit": sandbox.isolation(args.python), "rewardkit_0_1": baseline.isolation()},
        "results": results,
        "new_over_baseline": {w: round(results["rewardkit"][w]["snippets_per_s"]
                                       / results["rewardkit_0_1"][w]["snippets_per_s"], 3) for w in WORKLOADS},
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--snippets", type=int, default=40, help="snippets per timed round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of each system on each workload, alternating")
    p.add_argument("--workers", type=int, default=1, help="threads running a round's snippets")
    p.add_argument("--python", default=sys.executable, help="the interpreter both sandboxes run the snippets with")
    p.add_argument("--workdir", type=Path, default=None, help="folder for the baseline module (default: temp)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_json_main(run, parse_args(argv), prefix="rk-sandbox-bench-")


if __name__ == "__main__":
    sys.exit(main())
