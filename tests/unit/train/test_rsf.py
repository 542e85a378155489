"""Rejection-sampling fine-tuning: DPA's system prompt, scorers that see the user's prompt, and one full
iteration on a tiny policy whose picks, log and fine-tuned model are checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardkit.cli.main import main
from rewardkit.errors import OptionError
from rewardkit.infer.sampler import SamplingConfig
from rewardkit.scoring import ScorerOptions, build_scorer
from rewardkit.train.rsf import RSFConfig, UserView, dpa_system_prompt, run_rsf, with_system
from tiny_models import tiny_llama


def test_dpa_system_prompt_writes_the_unit_vector_times_100() -> None:
    # |(0.9, -0.4)| = sqrt(0.97) = 0.98489; 0.9 / 0.98489 = 0.9138 -> 91; -0.4 / 0.98489 = -0.4061 -> -41
    text = dpa_system_prompt({"helpfulness": 0.9, "verbosity": -0.4})
    assert text == "Your response should maximize weighted rating = helpfulness*91 + verbosity*-41"
    # DPA's example angle: θ = -15° -> (cos, sin) = (0.9659, -0.2588) -> 97, -26
    angle = np.deg2rad(-15)
    assert dpa_system_prompt({"helpfulness": float(np.cos(angle)), "verbosity": float(np.sin(angle))}).endswith(
        "helpfulness*97 + verbosity*-26")
    with pytest.raises(OptionError):
        dpa_system_prompt({"helpfulness": 0.0})


def test_with_system_replaces_a_system_prompt_and_keeps_the_rest() -> None:
    prompt = [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}]
    assert with_system(prompt, "new") == [{"role": "system", "content": "new"}, {"role": "user", "content": "hi"}]
    assert with_system("hi", None) == [{"role": "user", "content": "hi"}]


def test_user_view_scores_the_prompt_as_it_is_in_the_prompts_file(tmp_path: Path) -> None:
    user = [{"role": "user", "content": "Say yes. Write your entire answer in capital letters."}]
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": user, "constraints": [{"kind": "uppercase", "params": {}}]}) + "\n")
    verifier = build_scorer("verifier", ScorerOptions(items=str(items)))
    conditioned = with_system(user, "Your response should maximize weighted rating = helpfulness*100")
    view = UserView(verifier, {json.dumps([[m["role"], m["content"]] for m in conditioned]): user})
    responses = [[{"role": "assistant", "content": "YES."}], [{"role": "assistant", "content": "yes."}]]
    assert view.score([conditioned] * 2, responses).rewards.tolist() == [1.0, 0.0]


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("rsf") / "lm")


def _prompts(path: Path) -> Path:
    rows = [{"prompt": [{"role": "user", "content": q}]} for q in ("Name a fruit.", "Say hello.", "Count to three.")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_one_iteration_keeps_the_best_sample_and_fine_tunes_on_it(lm: Path, tmp_path: Path) -> None:
    cfg = RSFConfig(policy=str(lm), reward="length", prompts=str(_prompts(tmp_path / "p.jsonl")), out=str(tmp_path / "out"),
                    k=3, iterations=1, gold="length", sampling=SamplingConfig(max_new_tokens=6, seed=3),
                    batch_size=2, lr=1e-3, device="cpu", progress=False, sft=("warmup_ratio=0",))
    log = run_rsf(cfg)
    rows = log["iterations"]
    assert [r["iteration"] for r in rows] == [0, 1]  # the starting policy, then the fine-tuned one
    picks = [json.loads(line) for line in (tmp_path / "out" / "iter_1" / "picks.jsonl").read_text().splitlines()]
    assert len(picks) == 3 and rows[0]["picks"] == 3
    # the length scorer: each pick is the longest of its k samples, so picks beat the mean of all samples
    assert rows[0]["reward_picks"]["value"] >= rows[0]["reward_samples"]["value"]
    assert all(p["reward"] == p["gold"] for p in picks)  # gold = the same scorer here, logged apart
    assert np.isclose(np.mean([p["reward"] for p in picks]), rows[0]["reward_picks"]["value"])
    final = Path(log["final_policy"])
    assert final == tmp_path / "out" / "iter_1" / "model" and (final / "config.json").exists()
    saved = json.loads((tmp_path / "out" / "rsf.json").read_text())
    assert saved["final_policy"] == str(final) and len(saved["iterations"]) == 2
    assert rows[0]["sft"]["steps"] >= 1


def test_cli_runs_and_refuses_bad_options(lm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = _prompts(tmp_path / "p.jsonl")
    common = ["train", "rsf", "--policy", str(lm), "--reward", "length", "--prompts", str(prompts),
              "--out", str(tmp_path / "cli"), "--max-new-tokens", "4", "--device", "cpu", "--no-progress"]
    assert main([*common, "--k", "1"]) == 2
    assert "k must be >= 2" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": [{"role": "user", "content": "ok"}]}\n{"prompt": 3}\n')
    assert main([*common[:7], str(bad), *common[8:], "--k", "2"]) == 2
    assert "bad.jsonl" in capsys.readouterr().err
    assert main([*common, "--k", "2", "--iterations", "1", "--batch-size", "2"]) == 0
    assert "policy 1: reward" in capsys.readouterr().out
