"""Prometheus metrics of the reward server, in the text exposition format (version 0.0.4).

A small self-contained implementation (counters, gauges read at scrape time, histograms with labels):
the server updates them from its event loop only, so no locks are needed.

Exposed (all prefixed ``rewardkit_``):
  requests_total{endpoint,status}          answered requests
  items_total{endpoint}                    items scored (a pair counts 2)
  truncated_items_total{endpoint}          items the truncation policy cut
  rejected_total{reason}                   requests refused: queue_full, shutting_down, timeout
  batches_total                            batches scored
  batch_size                               histogram: items per batch (scored together)
  batch_tokens                             histogram: tokens (unpadded) per batch
  batch_model_seconds                      histogram: seconds in the model per batch
  batch_queue_wait_seconds                 histogram: wait of a batch's oldest item
  request_latency_seconds{endpoint}        histogram: request latency, arrival to answer
  queue_depth                              gauge: items waiting for the model
  pending_items                            gauge: items admitted and not yet answered
  inflight_requests                        gauge: requests being handled
  draining                                 gauge: 1 once shutdown began
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TOKEN_BUCKETS = (64, 256, 1024, 4096, 16_384, 65_536, 262_144)
Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = (*labels, *extra)
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}" if pairs else ""


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


@dataclass
class Counter:
    name: str
    help: str
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        return lines + [f"{self.name}{_labels(k)} {_num(v)}" for k, v in sorted(self.values.items())]


@dataclass
class Gauge:
    name: str
    help: str
    read: Callable[[], float]

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge", f"{self.name} {_num(self.read())}"]


@dataclass
class Histogram:
    name: str
    help: str
    buckets: Sequence[float]
    series: dict[Labels, tuple[list[int], list[float]]] = field(default_factory=dict)  # counts, [sum]

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        counts, total = self.series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        counts[-1] += 1  # +Inf
        total[0] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, (counts, total) in sorted(self.series.items()):
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                lines.append(f"{self.name}_bucket{_labels(key, (('le', _num(bound)),))} {n}")
            lines.append(f"{self.name}_sum{_labels(key)} {_num(total[0])}")
            lines.append(f"{self.name}_count{_labels(key)} {counts[-1]}")
        return lines


class ServerMetrics:
    """Every metric of one server; gauges read live values through callables set by the app."""

    def __init__(self) -> None:
        p = "rewardkit_"
        self.requests = Counter(p + "requests_total", "Requests answered, by endpoint and HTTP status.")
        self.items = Counter(p + "items_total", "Items scored (a pair counts 2), by endpoint.")
        self.truncated = Counter(p + "truncated_items_total", "Items cut by the truncation policy, by endpoint.")
        self.rejected = Counter(p + "rejected_total", "Requests refused: queue_full, shutting_down, timeout.")
        self.batches = Counter(p + "batches_total", "Batches scored.")
        self.batch_size = Histogram(p + "batch_size", "Items per batch (scored together).", SIZE_BUCKETS)
        self.batch_tokens = Histogram(p + "batch_tokens", "Tokens (unpadded) per batch.", TOKEN_BUCKETS)
        self.batch_seconds = Histogram(p + "batch_model_seconds", "Seconds in the model per batch.", LATENCY_BUCKETS)
        self.batch_wait = Histogram(p + "batch_queue_wait_seconds", "Queue wait of each batch's oldest item.",
                                    LATENCY_BUCKETS)
        self.latency = Histogram(p + "request_latency_seconds", "Request latency, arrival to answer.",
                                 LATENCY_BUCKETS)
        self.inflight = 0
        # live values, read at scrape time (the app points them at its batcher)
        self.queue_depth = Gauge(p + "queue_depth", "Items waiting for the model.", lambda: 0)
        self.pending = Gauge(p + "pending_items", "Items admitted and not yet answered.", lambda: 0)
        self.inflight_gauge = Gauge(p + "inflight_requests", "Requests being handled.", lambda: self.inflight)
        self.draining = Gauge(p + "draining", "1 once shutdown began (new requests get 503).", lambda: 0)

    def observe_batch(self, size: int, tokens: int, model_s: float, wait_s: float) -> None:
        self.batches.inc()
        self.batch_size.observe(size)
        self.batch_tokens.observe(tokens)
        self.batch_seconds.observe(model_s)
        self.batch_wait.observe(wait_s)

    def render(self) -> str:
        parts = [self.requests, self.items, self.truncated, self.rejected, self.batches, self.batch_size,
                 self.batch_tokens, self.batch_seconds, self.batch_wait, self.latency, self.queue_depth,
                 self.pending, self.inflight_gauge, self.draining]
        return "\n".join(line for m in parts for line in m.render()) + "\n"
