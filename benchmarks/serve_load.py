"""Reward server under concurrent load: dynamic batching vs one item per model call, in one run.

Two ``rewardkit serve`` processes on 127.0.0.1 serve the same ``minilm`` reward model (a folder given with
``--model``, or one built with a fresh head in a temporary folder, max length 256): one with dynamic
batching (the defaults), one with ``--max-batch-size 1 --max-wait-ms 0``. For each concurrency level
(1, 8, 32, 64 clients) each server is driven for ``--seconds`` by that many closed-loop clients (each
sends a request, waits for the answer, sends the next), in ``--rounds`` rounds that alternate between the
servers so both see the same background load of a shared machine. Clients stop sending when a round's
time is up and the requests still in flight are awaited and checked like the others; a round's
throughput is everything answered divided by the time from its start to its last answer (so slow
answers are neither cut off nor free), and each server's figure is its best round (other users' work on
a shared machine only ever adds time).

Requests carry ``--items-per-request`` real (prompt, response) items from the HH-RLHF test file. Every
answer is checked: one answer per request sent, as many rewards as items, and every reward equal to the
reward scored offline (``RewardModelScorer.score``) for that item, to 1e-4. Reported per level and server:
requests/s, items/s, latency p50/p95/p99, errors (non-200 or connection failures), lost requests
(sent, never answered), wrong scores, and the mean batch size the server formed (from its /metrics).
The headline is the items/s ratio of dynamic batching over one-item batches at 32 clients (target >= 3).

Prints one JSON object on stdout (progress goes to stderr).

    python benchmarks/serve_load.py --seconds 10 > serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from _common import OFFLINE_ENV

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"
TARGET_RATIO = 3.0
RATIO_CLIENTS = 32
TOLERANCE = 1e-4
MODES = {"dynamic_batching": [], "one_item_per_batch": ["--max-batch-size", "1", "--max-wait-ms", "0"]}


def log(message: str) -> None:
    print(f"[serve_load] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- model and data


def build_minilm(workdir: Path, max_length: int) -> Path:
    """``minilm`` with a fresh (seeded) reward head, saved as a rewardkit folder."""
    import torch

    from rewardkit.models.reward_model import build_reward_model, save_reward_model

    torch.manual_seed(0)
    rm = build_reward_model("minilm", max_length=max_length)
    return save_reward_model(rm, workdir / "minilm-rm", {"note": "serve_load benchmark: untrained head"})


def load_items(path: Path, n: int) -> list[dict[str, Any]]:
    """The first ``n`` valid HH-RLHF records as score items: shared turns as the prompt, the chosen reply."""
    from rewardkit.data.formats import DataError, Location, PreferenceExample, parse_record

    items: list[dict[str, Any]] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            try:
                ex = parse_record(json.loads(line), Location(str(path), line=i))
            except DataError:
                continue
            assert isinstance(ex, PreferenceExample)
            items.append({"prompt": [dict(m) for m in ex.prompt], "response": [dict(m) for m in ex.chosen]})
            if len(items) == n:
                break
    return items


def offline_rewards(model: Path, items: Sequence[dict[str, Any]]) -> tuple[np.ndarray, float]:
    """Rewards of ``items`` scored in-process (the reference every answer is checked against), and their
    mean length in tokens."""
    from rewardkit.scoring import RewardModelScorer
    from rewardkit.serve.schemas import ScoreItem

    scorer = RewardModelScorer(str(model))
    units = [ScoreItem.model_validate(item).unit() for item in items]
    encoded = scorer.encode([u[0] for u in units], [u[1] for u in units], [u[2] for u in units])
    rewards = scorer.score_batch_encoded(encoded).rewards
    return rewards.astype(np.float64), float(np.mean([len(e.input_ids) for e in encoded]))


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    mode: str
    url: str
    process: subprocess.Popen[bytes]
    exit_code: int | None = None


@contextlib.contextmanager
def servers(model: Path, threads: int | None) -> Iterator[dict[str, Server]]:
    """Both servers, started together and stopped with SIGTERM (their exit codes are recorded)."""
    env = {**os.environ, **OFFLINE_ENV}
    extra = ["--torch-threads", str(threads)] if threads else []
    running: dict[str, Server] = {}
    try:
        for mode, flags in MODES.items():
            port = free_port()
            cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "--model", str(model), "--port", str(port),
                   "--log-level", "warning", *extra, *flags]
            running[mode] = Server(mode, f"http://127.0.0.1:{port}",
                                   subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr))
        for server in running.values():
            wait_healthy(server)
        yield running
    finally:
        for server in running.values():
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in running.values():
            try:
                server.exit_code = server.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.exit_code = server.process.wait()


def wait_healthy(server: Server) -> None:
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.mode} server exited with {server.process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{server.mode} server did not become healthy")


def batch_counters(url: str) -> tuple[float, float]:
    """(model calls, items scored in them) from the server's Prometheus metrics."""
    import httpx

    values = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(("rewardkit_batch_size_count", "rewardkit_batch_size_sum")):
            name, value = line.split()
            values[name] = float(value)
    return values.get("rewardkit_batch_size_count", 0.0), values.get("rewardkit_batch_size_sum", 0.0)


# ----------------------------------------------------------------------------- load


@dataclass
class Tally:
    """One round against one server: every request sent, answered and checked; ``last`` is the time of
    the last answer."""

    sent: int = 0
    answered: int = 0
    ok_requests: int = 0
    ok_items: int = 0
    last: float = 0.0
    errors: int = 0
    wrong_scores: int = 0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)


async def client_loop(client: Any, url: str, worker: int, deadline: float, items: Sequence[dict[str, Any]],
                      expected: np.ndarray, per_request: int, tally: Tally) -> None:
    """One closed-loop client: request, check the answer, repeat until ``deadline``."""
    import httpx

    k = 0
    while time.perf_counter() < deadline:
        start = (worker * 7919 + k * per_request) % len(items)
        idx = [(start + j) % len(items) for j in range(per_request)]
        k += 1
        tally.sent += 1
        t0 = time.perf_counter()
        try:
            response = await client.post(url + "/v1/score", json={"items": [items[i] for i in idx]})
        except httpx.HTTPError as e:
            tally.errors += 1
            tally.error_samples.append(f"{type(e).__name__}: {e}")
            continue
        done = time.perf_counter()
        tally.answered += 1
        tally.last = max(tally.last, done)
        tally.latencies.append(done - t0)
        if response.status_code != 200:
            tally.errors += 1
            tally.error_samples.append(f"HTTP {response.status_code}: {response.text[:200]}")
            continue
        got = [x["reward"] for x in response.json()["items"]]
        if len(got) != len(idx) or np.max(np.abs(np.array(got) - expected[idx])) > TOLERANCE:
            tally.wrong_scores += 1
        else:
            tally.ok_requests += 1
            tally.ok_items += len(got)


async def drive(url: str, clients: int, seconds: float, items: Sequence[dict[str, Any]], expected: np.ndarray,
                per_request: int) -> tuple[Tally, float, float, float]:
    """``clients`` concurrent closed-loop clients for ``seconds``: the tally, the seconds from the start to
    the last answer, and the server's batches and items scored meanwhile."""
    import httpx

    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    calls0, items0 = batch_counters(url)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(600.0)) as client:
        for i in range(min(clients, 4)):  # open connections, warm the path
            await client.post(url + "/v1/score", json={"items": [items[i]]})
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(client, url, w, t0 + seconds, items, expected, per_request, tally)
                               for w in range(clients)))
    calls1, items1 = batch_counters(url)
    return tally, max(tally.last - t0, 1e-9), calls1 - calls0, items1 - items0


def measure_level(running: dict[str, Server], clients: int, seconds: float, rounds: int,
                  items: Sequence[dict[str, Any]], expected: np.ndarray, per_request: int) -> dict[str, dict[str, Any]]:
    """``rounds`` rounds of ``seconds / rounds`` per server, alternating baseline and dynamic batching, so
    both see the same background load; throughput is each server's best round (others' work only adds
    time), latency percentiles pool every round."""
    rounds_by_mode: dict[str, list[tuple[Tally, float, float, float]]] = {m: [] for m in MODES}
    for _ in range(rounds):
        for mode in reversed(list(MODES)):
            rounds_by_mode[mode].append(asyncio.run(drive(running[mode].url, clients, seconds / rounds, items,
                                                          expected, per_request)))
    return {mode: summarize(clients, rs) for mode, rs in rounds_by_mode.items()}


def summarize(clients: int, rounds: list[tuple[Tally, float, float, float]]) -> dict[str, Any]:
    rates = [t.ok_items / elapsed for t, elapsed, _, _ in rounds]
    best = int(np.argmax(rates))
    tally, elapsed = rounds[best][0], rounds[best][1]
    lat = np.array([x for t, *_ in rounds for x in t.latencies] or [float("nan")]) * 1000
    calls = sum(c for *_, c, _ in rounds)
    batched = sum(i for *_, i in rounds)
    return {
        "clients": clients,
        "requests_per_s": round(tally.ok_requests / elapsed, 2),
        "items_per_s": round(rates[best], 2),
        "items_per_s_rounds": [round(r, 2) for r in rates],
        "latency_ms": {f"p{q}": round(float(np.percentile(lat, q)), 1) for q in (50, 95, 99)},
        "requests": sum(t.sent for t, *_ in rounds),
        "answered": sum(t.answered for t, *_ in rounds),
        "errors": sum(t.errors for t, *_ in rounds),
        "lost_requests": sum(t.sent - t.answered for t, *_ in rounds),  # sent, never answered
        "wrong_scores": sum(t.wrong_scores for t, *_ in rounds),
        "mean_batch_size": round(batched / max(calls, 1), 2),
        "error_samples": [e for t, *_ in rounds for e in t.error_samples][:3],
    }


# ----------------------------------------------------------------------------- run and report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, help="reward model folder (default: minilm with a fresh head, built here)")
    p.add_argument("--clients", default="1,8,32,64", help="comma-separated concurrency levels")
    p.add_argument("--seconds", type=float, default=10.0, help="load duration per level and server")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds the seconds are split into")
    p.add_argument("--items-per-request", type=int, default=1, help="items in each request")
    p.add_argument("--pool", type=int, default=256, help="distinct HH-RLHF items the requests cycle through")
    p.add_argument("--max-length", type=int, default=256, help="max tokens of the built model")
    p.add_argument("--server-threads", type=int, default=None,
                   help="--torch-threads of both servers (default: torch's, all cores)")
    p.add_argument("--data", type=Path, default=DATA, help="HH-RLHF jsonl.gz")
    return p.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    model = args.model or build_minilm(workdir, args.max_length)
    items = load_items(args.data, args.pool)
    expected, mean_tokens = offline_rewards(model, items)
    log(f"{len(items)} items, {mean_tokens:.0f} tokens on average; model {model}")
    levels = [int(c) for c in args.clients.split(",")]
    results: dict[str, dict[str, Any]] = {mode: {} for mode in MODES}
    load_before = os.getloadavg()
    with servers(model, args.server_threads) as running:
        for clients in levels:
            level = measure_level(running, clients, args.seconds, args.rounds, items, expected,
                                  args.items_per_request)
            for mode, r in level.items():
                results[mode][str(clients)] = r
                log(f"{mode:>20} {clients:>3} clients: {r['items_per_s']:8.1f} items/s (rounds "
                    f"{r['items_per_s_rounds']}), p50 {r['latency_ms']['p50']} ms, batch {r['mean_batch_size']}, "
                    f"errors {r['errors']}, wrong {r['wrong_scores']}")
    exit_codes = {mode: server.exit_code for mode, server in running.items()}
    return report(args, model, items, mean_tokens, levels, results, exit_codes, load_before)


def report(args: argparse.Namespace, model: Path, items: Sequence[Any], mean_tokens: float, levels: list[int],
           results: dict[str, dict[str, Any]], exit_codes: dict[str, int | None],
           load_before: tuple[float, float, float]) -> dict[str, Any]:
    every = [r for mode in results.values() for r in mode.values()]
    key = str(RATIO_CLIENTS)
    ratio = None
    if key in results["dynamic_batching"]:
        on, off = results["dynamic_batching"][key], results["one_item_per_batch"][key]
        ratio = round(on["items_per_s"] / max(off["items_per_s"], 1e-9), 2)
    clean = all(r["errors"] == 0 and r["lost_requests"] == 0 and r["wrong_scores"] == 0 for r in every)
    return {
        "benchmark": "serve_load",
        "model": str(model) if args.model else f"minilm, fresh seeded head, max_length {args.max_length}",
        "data": f"{len(items)} HH-RLHF items (prompt: shared turns, response: chosen), {mean_tokens:.0f} tokens mean",
        "settings": {"clients": levels, "seconds_per_level": args.seconds, "rounds": args.rounds,
                     "items_per_request": args.items_per_request,
                     "server_flags": MODES, "server_threads": args.server_threads, "score_tolerance": TOLERANCE},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_before": [round(x, 2) for x in load_before],
                    "load_avg_after": [round(x, 2) for x in os.getloadavg()]},
        "results": results,
        f"items_per_s_ratio_at_{RATIO_CLIENTS}_clients": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio is not None and ratio >= TARGET_RATIO,
        "requests_total": sum(r["requests"] for r in every),
        "errors_total": sum(r["errors"] for r in every),
        "lost_requests_total": sum(r["lost_requests"] for r in every),
        "wrong_scores_total": sum(r["wrong_scores"] for r in every),
        "all_answered_and_correct": clean,
        "server_exit_codes_after_sigterm": exit_codes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    args = parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rk-serve-bench-") as tmp, contextlib.redirect_stdout(sys.stderr):
        out = run(args, Path(tmp))
    out["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=2))
    return 0 if out["all_answered_and_correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
