"""OpenRLHF loads ``reward_func`` from a file path; called as OpenRLHF calls it, it returns tensors with the
running server's rewards, equal to scoring the same conversations offline."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import rewardkit.integrations.openrlhf as openrlhf_module
from rewardkit.scoring import RewardModelScorer

CONVS = [([{"role": "user", "content": q}], [{"role": "assistant", "content": a}])
         for q, a in [("What is 2 + 2?", "4."), ("Name a fruit.", "An apple."), ("Is fire hot?", "Yes.")]]


def test_reward_func_loaded_from_its_file_returns_the_servers_rewards(
        server_url: str, llama_scorer: RewardModelScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDKIT_URL", server_url + "/get_reward")  # the URL OpenRLHF users already have
    monkeypatch.delenv("REWARDKIT_API_KEY_FILE", raising=False)
    monkeypatch.delenv("REWARDKIT_API_KEY", raising=False)
    spec = importlib.util.spec_from_file_location("reward_func", openrlhf_module.__file__)  # as OpenRLHF does
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    tok = llama_scorer.rm.tokenizer
    queries = [tok.apply_chat_template([*p, *r], tokenize=False) for p, r in CONVS]
    prompts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p, _ in CONVS]
    out = module.reward_func(queries, prompts, ["4", "apple", "yes"])

    expected = llama_scorer.score([p for p, _ in CONVS], [r for _, r in CONVS], True).rewards
    assert isinstance(out["rewards"], torch.Tensor) and out["rewards"].dtype == torch.float32
    np.testing.assert_allclose(out["rewards"].numpy(), expected, atol=1e-5, rtol=0)
    assert torch.equal(out["scores"], out["rewards"])
    assert set(out["extra_logs"]) == {"truncated", "unsplit"}
    assert out["extra_logs"]["unsplit"].tolist() == [0.0, 0.0, 0.0]
