"""Fixtures of the server tests: tiny reward models (built once per session) and their scorers."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_fixtures import tiny_reward_models

from rewardkit.scoring import LengthScorer, RewardModelScorer


@pytest.fixture(scope="session")
def tiny_rms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.getbasetemp() / "serve-tiny-rms"
    root.mkdir(exist_ok=True)
    return tiny_reward_models(root)


@pytest.fixture(scope="session")
def bert_scorer(tiny_rms: dict[str, Path]) -> RewardModelScorer:
    return RewardModelScorer(str(tiny_rms["bert"]))


@pytest.fixture(scope="session")
def llama_scorer(tiny_rms: dict[str, Path]) -> RewardModelScorer:
    return RewardModelScorer(str(tiny_rms["llama"]))


@pytest.fixture
def length_scorer() -> LengthScorer:
    return LengthScorer()
