"""verl's custom reward functions get the running server's rewards: equal to scoring the same prompt and
response offline, sync, async and batched; configured by keyword arguments or the environment."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.integrations import verl
from rewardkit.scoring import RewardModelScorer
from rewardkit.serve.settings import ServeSettings
from rewardkit.types import ScoreOutput
from unit.serve.serve_fixtures import live_server

USER = [{"role": "user", "content": "How do I boil an egg?"}]
SOLUTIONS = ["Boil it for nine minutes.", "Eggs are oval.", "Put it in water, heat, wait, cool."]


def offline(scorer: RewardModelScorer, prompt: Any, solutions: list[str], conversational: bool) -> np.ndarray:
    return scorer.score([prompt] * len(solutions), [[{"role": "assistant", "content": s}] for s in solutions],
                        conversational).rewards


def test_compute_score_equals_the_offline_reward(server_url: str, llama_scorer: RewardModelScorer) -> None:
    text_prompt = [{"role": "user", "content": USER[0]["content"]}]
    got = [verl.compute_score("gsm8k", s, "42", {"prompt": USER[0]["content"]}, url=server_url) for s in SOLUTIONS]
    assert all(isinstance(g, float) for g in got)
    np.testing.assert_allclose(got, offline(llama_scorer, text_prompt, SOLUTIONS, False), atol=1e-5, rtol=0)
    as_messages = [verl.compute_score("gsm8k", s, None, {"prompt": np.array(USER, dtype=object)}, url=server_url)
                   for s in SOLUTIONS]  # verl keeps message lists as numpy object arrays
    np.testing.assert_allclose(as_messages, offline(llama_scorer, USER, SOLUTIONS, True), atol=1e-5, rtol=0)
    alone = verl.compute_score("gsm8k", SOLUTIONS[0], "42", None, url=server_url)
    assert alone == pytest.approx(float(offline(llama_scorer, [], SOLUTIONS[:1], False)[0]), abs=1e-5)


def test_async_and_batch_variants_agree(server_url: str, llama_scorer: RewardModelScorer) -> None:
    infos = [{"question": USER[0]["content"]}] * len(SOLUTIONS)

    async def many() -> list[Any]:
        return list(await asyncio.gather(*(
            verl.compute_score_async("d", s, None, info, url=server_url, prompt_key="question")
            for s, info in zip(SOLUTIONS * 4, infos * 4, strict=True))))

    expected = offline(llama_scorer, USER, SOLUTIONS, False)
    np.testing.assert_allclose(asyncio.run(many()), np.tile(expected, 4), atol=1e-5, rtol=0)
    batch = verl.compute_score_batch(["d"] * 3, SOLUTIONS, [None] * 3, infos, url=server_url, prompt_key="question")
    np.testing.assert_allclose(batch, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="3 solutions but 1 extra_infos"):
        verl.compute_score_batch(["d"] * 3, SOLUTIONS, [None] * 3, infos[:1], url=server_url)


def test_the_server_is_found_from_the_environment(llama_scorer: RewardModelScorer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_text("sekret\n")
    with live_server(llama_scorer, ServeSettings(api_key="sekret")) as url:
        monkeypatch.setenv("REWARDKIT_URL", url)
        monkeypatch.setenv("REWARDKIT_API_KEY_FILE", str(tmp_path / "key"))
        got = verl.compute_score("d", SOLUTIONS[0], None, {"prompt": USER[0]["content"]})
    assert got == pytest.approx(float(offline(llama_scorer, USER, SOLUTIONS[:1], False)[0]), abs=1e-5)


class HeadsScorer:
    name = "heads"

    def score(self, prompts: Any, responses: Any, conversational: Any = True) -> ScoreOutput:
        n = len(responses)
        return ScoreOutput(np.full(n, 0.5), np.zeros(n, bool), np.full((n, 1), 0.25), ("safety",), np.full(n, 0.125))


def test_a_dict_with_score_when_the_model_reports_more() -> None:
    with live_server(HeadsScorer()) as url:  # type: ignore[arg-type]
        got = verl.compute_score("d", "x", None, url=url)
    assert got == {"score": 0.5, "objective/safety": 0.25, "uncertainty": 0.125}
