"""verl custom reward functions that score responses with a running ``rewardkit serve``.

verl passes ``(data_source, solution_str, ground_truth, extra_info)``: the response text, not the
prompt. Put the prompt in each row's ``extra_info`` under ``prompt_key`` (text, or a list of
``{"role", "content"}`` messages) so the reward model sees it; without it the response is scored alone.
A reward model ignores ``data_source`` and ``ground_truth``.

    custom_reward_function:
      path: /path/to/site-packages/rewardkit/integrations/verl.py   # python -c "import rewardkit.integrations.verl as m; print(m.__file__)"
      name: compute_score            # or compute_score_async, or compute_score_batch with reward_manager=batch
      reward_kwargs: {url: "http://127.0.0.1:8000", prompt_key: prompt}

Each returns the reward as a float, or, when the model reports per-objective rewards or uncertainty, a
dict with ``"score"`` and those values (verl logs the extra keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewardkit.client import ItemScore
from rewardkit.integrations import server_config, shared_async_client, shared_client

DEFAULT_TIMEOUT_S = 180.0


def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, *,
    url: str | None = None, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
    prompt_key: str = "prompt",
) -> float | dict[str, float]:
    """The reward of ``solution_str`` (for the prompt in ``extra_info[prompt_key]``, if any)."""
    base, key = server_config(url, api_key)
    result = shared_client(base, key, timeout).score([_item(solution_str, extra_info, prompt_key)])
    return _verl_value(result.items[0])


async def compute_score_async(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, *,
    url: str | None = None, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
    prompt_key: str = "prompt",
) -> float | dict[str, float]:
    """:func:`compute_score` as a coroutine (concurrent calls are batched together by the server)."""
    base, key = server_config(url, api_key)
    result = await shared_async_client(base, key, timeout).ascore([_item(solution_str, extra_info, prompt_key)])
    return _verl_value(result.items[0])


def compute_score_batch(
    data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None, *, url: str | None = None,
    api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S, prompt_key: str = "prompt",
) -> list[float | dict[str, float]]:
    """Rewards of a whole batch in one request (verl's ``BatchRewardManager`` signature)."""
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    if len(infos) != len(solution_strs):
        raise ValueError(f"{len(solution_strs)} solutions but {len(infos)} extra_infos")
    base, key = server_config(url, api_key)
    items = [_item(s, info, prompt_key) for s, info in zip(solution_strs, infos, strict=True)]
    result = shared_client(base, key, timeout).score(items)
    return [_verl_value(x) for x in result.items]


def _item(solution: str, extra_info: Mapping[str, Any] | None, prompt_key: str) -> dict[str, Any]:
    prompt = (extra_info or {}).get(prompt_key)
    if prompt is None or prompt == "":
        return {"response": solution}
    if not isinstance(prompt, str):
        prompt = [{"role": m["role"], "content": m["content"]} for m in prompt]  # numpy arrays of dicts too
    return {"prompt": prompt, "response": solution}


def _verl_value(item: ItemScore) -> float | dict[str, float]:
    if item.reward is None:  # verl needs a number: a per-item server error stops the batch, with its reason
        raise ValueError(f"the reward server could not score this item: {item.error}")
    if not item.objectives and item.uncertainty is None:
        return item.reward
    out = {"score": item.reward, **{f"objective/{k}": float(v) for k, v in (item.objectives or {}).items()}}
    if item.uncertainty is not None:
        out["uncertainty"] = float(item.uncertainty)
    return out
