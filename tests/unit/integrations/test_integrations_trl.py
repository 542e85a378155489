"""TRL GRPO reward functions: called as ``GRPOTrainer`` calls them (standard and conversational inputs, dataset
columns as keywords), they return ``build_scorer(spec).score(...)``'s rewards; pessimism subtracts k·U; verifier
references come per row from the dataset's columns; and TRL's real trainer runs two steps with them, logging
exactly the rewards they returned under their ``__name__``."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rewardkit.cli import main
from rewardkit.errors import OptionError
from rewardkit.integrations.trl import RewardFunction, remote_reward_function, reward_function, to_batch
from rewardkit.scoring import RewardModelScorer, ScorerOptions, build_scorer
from tiny_models import tiny_bert, tiny_llama, write_pairs

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")

CPU = {"device": "cpu", "dtype": "float32"}
QA = [("What is 2 + 2?", "4."), ("Name a fruit.", "An apple."), ("Is fire hot?", "Yes, very.")]
STANDARD = {"prompts": [q for q, _ in QA], "completions": [a for _, a in QA]}
CONVERSATIONAL = {"prompts": [[{"role": "user", "content": q}] for q, _ in QA],
                  "completions": [[{"role": "assistant", "content": a}] for _, a in QA]}


def trl_kwargs(inputs: dict[str, Any], **columns: Any) -> dict[str, Any]:
    """What GRPOTrainer passes: prompts, completions, completion_ids, the dataset columns and its own hooks."""
    return {**inputs, "completion_ids": [[1, 2]] * len(inputs["prompts"]), "trainer_state": None,
            "log_extra": lambda column, values: None, "log_metric": lambda name, value: None, **columns}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trl")
    fitted = tiny_bert(root / "fitted")
    assert main(["uncertainty", "fit", "--model", str(fitted), "--data", str(write_pairs(root / "pairs.jsonl")),
                 "--device", "cpu"]) == 0
    return {"fitted": fitted, "policy": tiny_llama(root / "policy"), "root": root}


def test_length_rewards_on_standard_and_conversational_inputs() -> None:
    fn = reward_function("length")
    assert fn.__name__ == "rewardkit/length"
    assert fn(**trl_kwargs(STANDARD)) == [2.0, 9.0, 10.0]  # len("4."), len("An apple."), len("Yes, very.")
    assert fn(**trl_kwargs(CONVERSATIONAL)) == [2.0, 9.0, 10.0]


@pytest.mark.parametrize("inputs, conversational", [(STANDARD, False), (CONVERSATIONAL, True)],
                         ids=["standard", "conversational"])
def test_reward_model_rewards_equal_the_scorers(models: dict[str, Path], inputs: dict[str, Any],
                                                conversational: bool) -> None:
    fn = reward_function(f"rm:{models['fitted']}", **CPU)
    assert fn.__name__ == "rewardkit/rm"
    scorer = build_scorer(str(models["fitted"]), ScorerOptions(**CPU))
    prompts = [[{"role": "user", "content": q}] for q, _ in QA]  # text is one user / assistant turn
    responses = [[{"role": "assistant", "content": a}] for _, a in QA]
    expected = scorer.score(prompts, responses, conversational)
    got = fn(**trl_kwargs(inputs))
    assert isinstance(got, list) and all(isinstance(r, float) for r in got)
    np.testing.assert_allclose(got, expected.rewards, atol=1e-6, rtol=0)
    np.testing.assert_allclose(fn.last_uncertainty, expected.uncertainty, atol=1e-6, rtol=0)
    assert to_batch(inputs["prompts"], inputs["completions"]).conversational == [conversational] * 3


def test_pessimism_subtracts_k_times_the_uncertainty_and_logs_its_mean(models: dict[str, Path]) -> None:
    plain = reward_function(str(models["fitted"]), **CPU)
    pess = reward_function(str(models["fitted"]), pessimism=2.0, name="rm-lcb", **CPU)
    logged: list[tuple[str, float]] = []
    r0 = plain(**trl_kwargs(CONVERSATIONAL))
    r2 = pess(**{**trl_kwargs(CONVERSATIONAL), "log_metric": lambda name, value: logged.append((name, value))})
    u = np.asarray(plain.last_uncertainty)
    assert (u > 0).all() and pess.last_uncertainty == plain.last_uncertainty
    np.testing.assert_allclose(r2, np.asarray(r0) - 2.0 * u, atol=1e-5, rtol=0)
    assert logged == [("rm-lcb/uncertainty", pytest.approx(float(u.mean())))]


def test_bad_options_fail_when_the_function_is_built() -> None:
    with pytest.raises(OptionError, match="needs a scorer that reports uncertainty"):
        reward_function("length", pessimism=1.0)
    with pytest.raises(OptionError, match="finite number >= 0"):
        reward_function("length", pessimism=-1.0)
    with pytest.raises(OptionError, match="non-empty name"):
        reward_function("length", name="")
    lazy = reward_function("length", pessimism=1.0, lazy=True)  # built on the first call instead
    with pytest.raises(OptionError, match="needs a scorer that reports uncertainty"):
        lazy(**trl_kwargs(STANDARD))


def test_verifier_checks_each_row_against_its_own_columns_else_the_items_file(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"prompt": "Is fire hot?", "constraints": [{"kind": "lowercase"}]}\n')
    fn = reward_function("verifier", items=str(items))
    prompts = ["What is 2 + 2?", "Say it in lowercase.", "Is fire hot?"]
    completions = ["The answer is 4.", "Hello There", "yes"]
    # Columns as GRPOTrainer reads them from a `datasets` table, whose structs carry every key of the column
    # (here lowercase's params become {"n": None}); row 3 has no column value and falls back to the items file.
    from datasets import Dataset

    rows = Dataset.from_list([{"answer": "4", "constraints": None},
                              {"answer": None, "constraints": [{"kind": "lowercase", "params": {}},
                                                               {"kind": "max_words", "params": {"n": 5}}]},
                              {"answer": None, "constraints": None}])
    assert rows[1]["constraints"][0] == {"kind": "lowercase", "params": {"n": None}}
    got = fn(**trl_kwargs({"prompts": prompts, "completions": completions}, answer=rows["answer"],
                          constraints=rows["constraints"]))
    assert got == [1.0, 0.5, 1.0]  # 4 == 4; not lowercase but 2 words <= 5; lowercase, from the items file
    with pytest.raises(KeyError, match="no checkable reference"):  # neither a column nor the items file
        fn(**trl_kwargs({"prompts": ["Unknown?"], "completions": ["x"]}, answer=[None]))


def test_bare_verifier_and_hybrid_take_references_from_columns_only() -> None:
    prompts, completions = ["What is 2 + 2?", "Tell a joke."], ["It is 5.", "Why did the chicken..."]
    verifier = reward_function("verifier")  # no items file: the dataset's columns are the references
    assert verifier(**trl_kwargs({"prompts": prompts[:1], "completions": completions[:1]}, answer=["4"])) == [0.0]
    hybrid = reward_function("hybrid:length", name="rk-hybrid")
    assert hybrid.__name__ == "rk-hybrid"
    got = hybrid(**trl_kwargs({"prompts": prompts, "completions": completions}, answer=["4", None]))
    assert got == [0.0, float(len(completions[1]))]  # verifier (5 != 4), then the length scorer
    assert reward_function("length")(**trl_kwargs(STANDARD, answer=["x"] * 3)) == [2.0, 9.0, 10.0]  # unread


def test_pickles_without_its_model_and_rebuilds_it(models: dict[str, Path]) -> None:
    fn = reward_function(str(models["fitted"]), **CPU)
    copy = pickle.loads(pickle.dumps(fn))
    assert isinstance(copy, RewardFunction) and copy._scorer is None and copy.__name__ == "rewardkit/rm"
    assert copy(**trl_kwargs(STANDARD)) == fn(**trl_kwargs(STANDARD))


def test_remote_reward_function_returns_the_servers_rewards(server_url: str,
                                                            llama_scorer: RewardModelScorer) -> None:
    fn = remote_reward_function(server_url, name="rk-remote")
    assert fn.__name__ == "rk-remote"
    prompts = [[{"role": "user", "content": q}] for q, _ in QA]
    responses = [[{"role": "assistant", "content": a}] for _, a in QA]
    for inputs, conversational in ((CONVERSATIONAL, True), (STANDARD, False)):
        expected = llama_scorer.score(prompts, responses, conversational).rewards
        np.testing.assert_allclose(fn(**trl_kwargs(inputs)), expected, atol=1e-5, rtol=0)


def test_grpo_trainer_runs_two_steps_and_logs_our_rewards(models: dict[str, Path]) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    returned: dict[str, list[list[float]]] = {}

    def recording(fn: RewardFunction) -> Any:
        def call(**kwargs: Any) -> list[float]:
            out = fn(**kwargs)
            returned.setdefault(fn.__name__, []).append(out)
            return out

        call.__name__ = fn.__name__
        return call

    funcs = [reward_function("length"), reward_function(str(models["fitted"]), pessimism=1.0, **CPU)]
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": q}] for q, _ in QA[:2]] * 2})
    args = GRPOConfig(output_dir=str(models["root"] / "grpo"), max_steps=2, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=8, report_to=[], use_cpu=True, logging_steps=1,
                      save_strategy="no", seed=0)
    trainer = GRPOTrainer(model=str(models["policy"]), reward_funcs=[recording(f) for f in funcs], args=args,
                          train_dataset=data)
    trainer.train()

    from trl.trainer.utils import get_callable_name, is_async_callable

    assert [get_callable_name(f) for f in funcs] == ["rewardkit/length", "rewardkit/rm"]  # as TRL names them
    assert not any(is_async_callable(f) for f in funcs)
    assert trainer.state.global_step == 2
    steps = [h for h in trainer.state.log_history if "rewards/rewardkit/length/mean" in h]
    assert len(steps) == 2 and set(returned) == {"rewardkit/length", "rewardkit/rm"}
    for name, calls in returned.items():
        assert len(calls) == 2 and all(len(c) == 2 for c in calls)  # one call per step, 2 completions
        for logged, rewards in zip(steps, calls, strict=True):
            assert logged[f"rewards/{name}/mean"] == pytest.approx(np.mean(rewards), abs=1e-5)
    assert all(h["rewardkit/rm/uncertainty"] > 0 for h in steps)  # through TRL's log_metric
