"""OpenRLHF custom reward function that forwards to a running ``rewardkit serve``.

OpenRLHF can load ``reward_func(queries, prompts, labels, **kwargs)`` from a Python file in place of a
reward URL; this file is such a module, for when the trainer should reach the server through
rewardkit's client (retries with backoff, several servers, an API key) instead of its own::

    export REWARDKIT_URL=http://10.0.0.1:8000,http://10.0.0.2:8000   # the batch is split across them
    export REWARDKIT_API_KEY_FILE=/secrets/rm-key                      # if the servers require one
    --remote_rm_url $(python -c "import rewardkit.integrations.openrlhf as m; print(m.__file__)")

(Or point ``--remote_rm_url`` at ``http://host:port/get_reward`` directly: the server speaks the same
protocol.) Labels are not sent: a reward model does not use them; other keyword arguments are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardkit.integrations import server_config, shared_client

DEFAULT_TIMEOUT_S = 180.0


def reward_func(queries: Sequence[str], prompts: Sequence[str] | None = None, labels: Sequence[Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
    """``{"rewards": (N,) float tensor, "scores": (N,) float tensor, "extra_logs": {name: (N,) tensor}}``
    for the decoded prompt + response texts ``queries``."""
    import torch

    url, key = server_config()
    out = shared_client(url, key, DEFAULT_TIMEOUT_S).get_reward(list(queries), list(prompts) if prompts else None)
    return {"rewards": torch.tensor(out["rewards"], dtype=torch.float32),
            "scores": torch.tensor(out["scores"], dtype=torch.float32),
            "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in out["extra_logs"].items()}}
