"""Settings of the reward server: one frozen dataclass, validated on construction, every field explained.

The command line (:mod:`rewardkit.serve.cli`) builds its flags' defaults and help from these fields, so
the two never disagree.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

OpenRLHFScores = Literal["raw", "sigmoid"]


@dataclass(frozen=True)
class ServeSettings:
    """How ``rewardkit serve`` listens, batches, limits and protects itself."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to bind; loopback by default (use 0.0.0.0 "
                                                              "only behind a firewall, with --api-key-file)"})
    port: int = field(default=8000, metadata={"help": "TCP port"})
    max_batch_tokens: int = field(default=16_384, metadata={
        "help": "padded-token budget of one batch (items x longest item)"})
    max_batch_size: int = field(default=128, metadata={
        "help": "most items in one batch (1 turns dynamic batching off)"})
    max_padding: float = field(default=0.25, metadata={
        "help": "a batch is scored in forwards of similar lengths, each padded by at most this fraction of its "
                "real tokens (padding costs as much as real tokens on CPUs; raise it on GPUs for bigger forwards)"})
    max_wait_ms: float = field(default=2.0, metadata={
        "help": "how long the oldest queued item may wait for others to fill its batch"})
    max_queue_items: int = field(default=32_768, metadata={
        "help": "items admitted and not yet answered; beyond this requests get 503 with Retry-After"})
    max_items_per_request: int = field(default=8_192, metadata={
        "help": "most items (or queries; a pair counts 2) in one request (413 beyond)"})
    max_body_bytes: int = field(default=32 * 1024 * 1024, metadata={"help": "largest request body (413 beyond)"})
    request_timeout_s: float = field(default=180.0, metadata={
        "help": "a request not answered within this many seconds gets 504 and its queued items are dropped"})
    body_timeout_s: float = field(default=30.0, metadata={
        "help": "a request body must arrive within this many seconds of its headers; a slower or stalled upload "
                "gets 408 and its connection is closed"})
    drain_timeout_s: float = field(default=60.0, metadata={
        "help": "on SIGTERM, how long admitted requests may take to finish; past it they are answered 503"})
    openrlhf_scores: OpenRLHFScores = field(default="raw", metadata={
        "help": "the 'scores' of /get_reward (OpenRLHF's dynamic filtering expects 0-1): the raw rewards, or "
                "sigmoid(reward)"})
    prep_threads: int = field(default=1, metadata={
        "help": "threads that tokenize requests before they are batched (the model runs in one more thread)"})
    api_key: str | None = field(default=None, repr=False, metadata={
        "help": "bearer key every request except /health must carry, /docs and /openapi.json included (None: no "
                "authentication)"})

    def __post_init__(self) -> None:
        positive = ("max_batch_tokens", "max_batch_size", "max_queue_items", "max_items_per_request",
                    "max_body_bytes", "request_timeout_s", "body_timeout_s", "prep_threads")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.drain_timeout_s < 0 or self.max_padding < 0:
            raise ValueError("max_wait_ms, max_padding and drain_timeout_s must not be negative")
        if not 0 <= self.port <= 65_535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.max_items_per_request > self.max_queue_items:
            raise ValueError(f"max_items_per_request ({self.max_items_per_request}) cannot exceed max_queue_items "
                             f"({self.max_queue_items}): such a request could never be admitted")
        if self.openrlhf_scores not in ("raw", "sigmoid"):
            raise ValueError(f"openrlhf_scores must be 'raw' or 'sigmoid', got {self.openrlhf_scores!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key is empty")

    @property
    def loopback(self) -> bool:
        """Whether ``host`` only accepts connections from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def read_api_key(path: str) -> str:
    """The API key stored in ``path`` (surrounding whitespace removed); the key never goes on a command line,
    where other users of the machine could read it."""
    with open(path, encoding="utf-8") as f:
        key = f.read().strip()
    if not key:
        raise ValueError(f"{path}: the API key file is empty")
    return key
