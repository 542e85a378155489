"""Reward functions for RL trainers.

- :mod:`rewardkit.integrations.verl`: ``compute_score`` (sync), ``compute_score_async`` and
  ``compute_score_batch`` for verl's ``custom_reward_function``;
- :mod:`rewardkit.integrations.openrlhf`: ``reward_func`` for OpenRLHF's ``--remote_rm_url <file>.py``;
- :mod:`rewardkit.integrations.trl`: ``reward_function(spec)`` for TRL's ``GRPOTrainer(reward_funcs=...)``,
  scoring in-process with any scorer spec (or ``remote_reward_function(url)`` through a server).

verl and OpenRLHF's functions are backed by a running ``rewardkit serve``; they find the server from their keyword arguments or, failing that, the environment:
``REWARDKIT_URL`` (comma-separated for several servers; default ``http://127.0.0.1:8000``) and
``REWARDKIT_API_KEY_FILE`` (or ``REWARDKIT_API_KEY``). Clients are cached per process (and per event
loop for the async function), so connections are reused across calls.
"""

from __future__ import annotations

import asyncio
import functools
import os
import weakref

from rewardkit.client import DEFAULT_URL, RewardClient, read_api_key

_ASYNC_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[object, ...], RewardClient]] = (
    weakref.WeakKeyDictionary())


def server_config(url: str | None = None, api_key: str | None = None) -> tuple[str, str | None]:
    """The server URL(s) and API key: the arguments, else ``REWARDKIT_URL`` / ``REWARDKIT_API_KEY_FILE`` /
    ``REWARDKIT_API_KEY``."""
    url = url or os.environ.get("REWARDKIT_URL") or DEFAULT_URL
    if api_key is None:
        path = os.environ.get("REWARDKIT_API_KEY_FILE")
        api_key = read_api_key(path) if path else os.environ.get("REWARDKIT_API_KEY") or None
    return url, api_key


@functools.lru_cache(maxsize=16)
def shared_client(url: str, api_key: str | None, timeout: float) -> RewardClient:
    """One sync client per (url, key, timeout) in this process."""
    return RewardClient(url, api_key=api_key, timeout=timeout)


def shared_async_client(url: str, api_key: str | None, timeout: float) -> RewardClient:
    """One client per (url, key, timeout) per running event loop (httpx async pools belong to a loop)."""
    clients = _ASYNC_CLIENTS.setdefault(asyncio.get_running_loop(), {})
    key = (url, api_key, timeout)
    if key not in clients:
        clients[key] = RewardClient(url, api_key=api_key, timeout=timeout)
    return clients[key]
