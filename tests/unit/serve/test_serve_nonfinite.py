"""A model that gives NaN or infinity: JSON cannot carry it, so /v1/score answers such an item with an error
in its entry (the other items keep their rewards), /get_reward refuses the request with a JSON 422 naming
the query, the metrics count the items, and ``rewardkit serve`` refuses a model that is broken outright."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pytest
from serve_fixtures import asgi_client, run

from rewardkit.errors import UnsupportedError
from rewardkit.scoring import LengthScorer
from rewardkit.serve import cli as serve_cli
from rewardkit.serve.app import create_app
from rewardkit.serve.engine import check_finite_rewards
from rewardkit.types import ScoreOutput

SPECIAL = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


class SometimesNaN:
    """reward = len(response), except responses "nan", "inf", "-inf" get that value; an objective "safe"
    that is NaN for the response "bad objective"."""

    name = "sometimes-nan"

    def score(self, prompts: Any, responses: Any, conversational: Any = True) -> ScoreOutput:
        texts = [r[-1]["content"] for r in responses]
        rewards = np.array([SPECIAL.get(t, len(t)) for t in texts], dtype=np.float32)
        safe = np.array([[np.nan if t == "bad objective" else 1.0] for t in texts], dtype=np.float32)
        return ScoreOutput(rewards, np.zeros(len(texts), bool), safe, ("safe",))


async def _post(path: str, body: dict[str, Any]) -> Any:
    app = create_app(SometimesNaN())  # type: ignore[arg-type]
    async with asgi_client(app) as c:
        return await c.post(path, json=body), (await c.get("/metrics")).text


def test_each_non_finite_item_carries_an_error_and_the_others_their_rewards() -> None:
    body = {"items": [{"response": "fine"}, {"response": "nan"}, {"response": "inf"}, {"response": "bad objective"}],
            "pairs": [{"chosen": "good", "rejected": "-inf"}, {"chosen": "long one", "rejected": "ok"}]}
    r, metrics = run(_post("/v1/score", body))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["items"] == [
        {"reward": 4.0, "truncated": False, "objectives": {"safe": 1.0}},
        {"truncated": False, "error": "the model produced a non-finite reward (nan) for this item"},
        {"truncated": False, "error": "the model produced a non-finite reward (inf) for this item"},
        {"truncated": False, "error": "the model produced a non-finite objective 'safe' (nan) for this item"},
    ]
    assert out["pairs"][0] == {"chosen": {"reward": 4.0, "truncated": False, "objectives": {"safe": 1.0}},
                               "rejected": {"truncated": False,
                                            "error": "the model produced a non-finite reward (-inf) for this item"}}
    assert out["pairs"][1]["margin"] == 6.0
    assert 'rewardkit_non_finite_items_total{endpoint="/v1/score"} 4.0' in metrics


def test_get_reward_refuses_a_batch_with_a_non_finite_reward_as_json_422() -> None:
    r, metrics = run(_post("/get_reward", {"query": ["fine", "nan", "inf"]}))
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "query 1: the model produced a non-finite reward (nan) for this item (and 1 more); "
                                 "this protocol has no per-query error, so no rewards are returned (/v1/score "
                                 "answers the other items)"}
    assert 'rewardkit_non_finite_items_total{endpoint="/get_reward"} 2.0' in metrics
    assert 'rewardkit_requests_total{endpoint="/get_reward",status="422"} 1.0' in metrics


class AlwaysNaN(LengthScorer):
    """A model with broken weights: every reward is NaN."""

    def score(self, prompts: Any, responses: Any, conversational: Any = True) -> ScoreOutput:
        out = super().score(prompts, responses, conversational)
        return ScoreOutput(np.full_like(out.rewards, np.nan), out.truncated)


def test_the_probe_refuses_a_model_that_always_answers_nan() -> None:
    check_finite_rewards(LengthScorer())  # a sound model passes
    with pytest.raises(UnsupportedError, match=r"model 'length' gives a probe conversation a non-finite reward \(nan\)"):
        check_finite_rewards(AlwaysNaN())


def test_rewardkit_serve_refuses_such_a_model_before_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    import rewardkit.scoring
    import rewardkit.serve.server

    for builder in ("load_scorer", "build_scorer"):  # whichever one builder `rewardkit serve` calls
        monkeypatch.setattr(rewardkit.scoring, builder, lambda *a, **k: AlwaysNaN(), raising=False)

    def never(*a: Any, **k: Any) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(rewardkit.serve.server, "serve", never)
    parser = argparse.ArgumentParser()
    serve_cli.add_commands(parser.add_subparsers())
    args = parser.parse_args(["serve", "--model", "broken", "--body-timeout", "12"])
    assert args.body_timeout_s == 12.0
    with pytest.raises(UnsupportedError, match="refusing to serve it"):  # the CLI prints it and exits 2
        args.handler(args)
