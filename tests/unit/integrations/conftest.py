"""Fixtures of the integration tests: a live ``rewardkit serve`` (tiny chat-template reward model) on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rewardkit.scoring import RewardModelScorer
from unit.serve.serve_fixtures import live_server, tiny_reward_models


@pytest.fixture(scope="session")
def llama_scorer(tmp_path_factory: pytest.TempPathFactory) -> RewardModelScorer:
    root = tmp_path_factory.getbasetemp() / "serve-tiny-rms"
    root.mkdir(exist_ok=True)
    return RewardModelScorer(str(tiny_reward_models(root)["llama"]))


@pytest.fixture(scope="module")
def server_url(llama_scorer: RewardModelScorer) -> Iterator[str]:
    with live_server(llama_scorer) as url:
        yield url
