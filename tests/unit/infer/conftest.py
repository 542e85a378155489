"""Fixtures shared by the sampler, Best-of-N and Speculative Rejection tests: one torch thread and a
tiny random Llama policy (SmolLM2's real tokenizer), built once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rewardkit.infer.sampler import Policy, policy_from_model
from tiny_models import tiny_llama


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny_llama") / "lm")


@pytest.fixture(scope="module")
def policy(lm_path: Path) -> Policy:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return policy_from_model(AutoModelForCausalLM.from_pretrained(lm_path), AutoTokenizer.from_pretrained(lm_path), "tiny")
