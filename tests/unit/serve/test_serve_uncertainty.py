"""A served model with fitted uncertainty: ``/v1/score`` items carry ``uncertainty`` (and the pessimistic
reward r − k·U under ``--pessimism``), OpenRLHF's ``extra_logs`` carry the uncertainty column, and
``/v1/models`` says what the uncertainty is and which k is served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serve_fixtures import asgi_client, run

from rewardkit.cli import main
from rewardkit.scoring import ScorerOptions, build_scorer
from rewardkit.serve.app import create_app
from tiny_models import PAIRS, tiny_bert, write_pairs

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-uncertainty")
    folder = tiny_bert(root / "rm")
    assert main(["uncertainty", "fit", "--model", str(folder), "--data", str(write_pairs(root / "p.jsonl")),
                 "--device", "cpu"]) == 0
    return folder


async def _calls(app: Any, body: dict[str, Any], query: dict[str, Any]) -> tuple[Any, Any, Any]:
    async with asgi_client(app) as client:
        return ((await client.post("/v1/score", json=body)).json(), (await client.post("/get_reward", json=query)).json(),
                (await client.get("/v1/models")).json())


def test_score_openrlhf_and_models_carry_the_uncertainty(fitted: Path) -> None:
    items = [{"prompt": p, "response": c} for p, c, _ in PAIRS[:4]]
    body = {"items": items, "pairs": [{"prompt": PAIRS[0][0], "chosen": PAIRS[0][1], "rejected": PAIRS[0][2]}]}
    query = {"query": [p + " " + c for p, c, _ in PAIRS[:4]], "prompts": [p for p, _, _ in PAIRS[:4]]}
    plain = build_scorer(str(fitted), ScorerOptions(device="cpu", dtype="float32"))
    pess = build_scorer(str(fitted), ScorerOptions(device="cpu", dtype="float32", pessimism=2.0))
    score0, reward0, card0 = run(_calls(create_app(plain), body, query))
    score2, reward2, card2 = run(_calls(create_app(pess), body, query))
    u = np.array([it["uncertainty"] for it in score0["items"]])
    assert (u > 0).all() and [it["uncertainty"] for it in score2["items"]] == u.tolist()
    np.testing.assert_allclose([it["reward"] for it in score2["items"]],
                               np.array([it["reward"] for it in score0["items"]]) - 2 * u, atol=1e-6)
    pair = score2["pairs"][0]
    assert pair["chosen"]["uncertainty"] > 0 and pair["rejected"]["uncertainty"] > 0
    logs_u = np.array(reward0["extra_logs"]["uncertainty"])
    assert len(logs_u) == 4 and (logs_u > 0).all() and reward2["extra_logs"]["uncertainty"] == logs_u.tolist()
    np.testing.assert_allclose(reward2["rewards"], np.array(reward0["rewards"]) - 2 * logs_u, atol=1e-6)
    assert (card0["data"][0]["uncertainty"], card0["data"][0]["pessimism"]) == ("last-layer", 0.0)
    assert (card2["data"][0]["uncertainty"], card2["data"][0]["pessimism"]) == ("last-layer", 2.0)
