"""Prometheus metrics of the reward server, kept by ``prometheus_client`` in one registry per app.

Each app owns its own :class:`prometheus_client.CollectorRegistry` (not the process-wide default), so
several apps in one process -- tests, a benchmark driving two servers -- never share or collide on
series. ``GET /metrics`` serves it in prometheus_client's text exposition format.

Exposed (all prefixed ``rewardkit_``):
  requests_total{endpoint,status}          answered requests; status 499 = the client closed the
                                           connection before its answer (nginx's "client closed request")
  items_total{endpoint}                    items scored (a pair counts 2)
  truncated_items_total{endpoint}          items the truncation policy cut
  non_finite_items_total{endpoint}         items the model gave a NaN or infinite value (answered as errors)
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

prometheus_client also exports a ``*_created`` timestamp beside each counter and histogram series.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
CLIENT_CLOSED = 499  # nginx's status for a request whose client went away before the answer
REJECT_REASONS = ("queue_full", "shutting_down", "timeout")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TOKEN_BUCKETS = (64, 256, 1024, 4096, 16_384, 65_536, 262_144)


class ServerMetrics:
    """Every metric of one server, in its own registry; gauges read live values at scrape time
    (:meth:`watch`). prometheus_client is thread-safe, so any thread may update them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        p, r = "rewardkit_", self.registry
        self.requests = Counter(p + "requests_total", "Requests answered, by endpoint and HTTP status (499: the "
                                "client closed the connection first).", ["endpoint", "status"], registry=r)
        self.items = Counter(p + "items_total", "Items scored (a pair counts 2), by endpoint.", ["endpoint"],
                             registry=r)
        self.truncated = Counter(p + "truncated_items_total", "Items cut by the truncation policy, by endpoint.",
                                 ["endpoint"], registry=r)
        self.non_finite = Counter(p + "non_finite_items_total", "Items the model gave a NaN or infinite value "
                                  "(answered as errors), by endpoint.", ["endpoint"], registry=r)
        self.rejected = Counter(p + "rejected_total", "Requests refused: queue_full, shutting_down, timeout.",
                                ["reason"], registry=r)
        for reason in REJECT_REASONS:  # every series exists from the start (rate() needs a first sample)
            self.rejected.labels(reason=reason)
        self.batches = Counter(p + "batches_total", "Batches scored.", registry=r)
        self.batch_size = Histogram(p + "batch_size", "Items per batch (scored together).", buckets=SIZE_BUCKETS,
                                    registry=r)
        self.batch_tokens = Histogram(p + "batch_tokens", "Tokens (unpadded) per batch.", buckets=TOKEN_BUCKETS,
                                      registry=r)
        self.batch_seconds = Histogram(p + "batch_model_seconds", "Seconds in the model per batch.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.batch_wait = Histogram(p + "batch_queue_wait_seconds", "Queue wait of each batch's oldest item.",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.latency = Histogram(p + "request_latency_seconds", "Request latency, arrival to answer.", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.inflight = Gauge(p + "inflight_requests", "Requests being handled.", registry=r)
        self.queue_depth = Gauge(p + "queue_depth", "Items waiting for the model.", registry=r)
        self.pending = Gauge(p + "pending_items", "Items admitted and not yet answered.", registry=r)
        self.draining = Gauge(p + "draining", "1 once shutdown began (new requests get 503).", registry=r)

    def watch(self, *, queue_depth: Callable[[], float], pending: Callable[[], float],
              draining: Callable[[], float]) -> None:
        """Read these gauges from live values at each scrape."""
        self.queue_depth.set_function(queue_depth)
        self.pending.set_function(pending)
        self.draining.set_function(draining)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def observe_scored(self, endpoint: str, *, items: int, truncated: int, non_finite: int) -> None:
        self.items.labels(endpoint=endpoint).inc(items)
        self.truncated.labels(endpoint=endpoint).inc(truncated)
        if non_finite:
            self.non_finite.labels(endpoint=endpoint).inc(non_finite)

    def observe_rejected(self, reason: str) -> None:
        self.rejected.labels(reason=reason).inc()

    def observe_batch(self, size: int, tokens: int, model_s: float, wait_s: float) -> None:
        self.batches.inc()
        self.batch_size.observe(size)
        self.batch_tokens.observe(tokens)
        self.batch_seconds.observe(model_s)
        self.batch_wait.observe(wait_s)

    def value(self, name: str, **labels: str) -> float:
        """The current value of one sample (0 when the series does not exist yet)."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def render(self) -> bytes:
        """The registry in the text exposition format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
