"""The ``prm:DIR`` scorer: step splitting, aggregation by hand (min / last / product), the spec suffix, and a
PRM-guided Best-of-N call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardkit.errors import OptionError
from rewardkit.infer.best_of_n import best_of_n
from rewardkit.infer.sampler import SamplingConfig, policy_from_model
from rewardkit.models.prm import build_prm, save_prm, split_response
from rewardkit.scorers import prm as prm_scorer
from rewardkit.scorers.prm import aggregate, parse_prm_spec
from rewardkit.scoring import build_scorer
from tiny_models import tiny_bert, tiny_llama

USER = [{"role": "user", "content": "Is 2+2 4?"}]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained PRM folder on a tiny BERT (random head): enough to exercise the plumbing."""
    root = tmp_path_factory.mktemp("prm-scorer")
    prm = build_prm(str(tiny_bert(root / "bert")), max_length=64)
    return save_prm(prm, root / "prm", {"backbone": "tiny"})


def test_split_response_drops_blank_lines() -> None:
    assert split_response("a\n\n  \nb\n") == ["a", "b"]
    assert split_response("only one") == ["only one"]
    assert split_response("\n \n") == [""]  # nothing but blank lines: one empty step, still scored


def test_parse_spec() -> None:
    assert parse_prm_spec("runs/prm") == ("runs/prm", "min")
    assert parse_prm_spec("runs/prm#agg=product") == ("runs/prm", "product")
    for bad in ("runs/prm#agg=mean", "runs/prm#weights=1"):
        with pytest.raises(OptionError):
            parse_prm_spec(bad)


def test_aggregate_by_hand() -> None:
    probs = [np.array([0.9, 0.2, 0.8]), np.array([0.5]), np.array([0.9, 0.9])]
    np.testing.assert_allclose(aggregate(probs, "min"), [0.2, 0.5, 0.9], rtol=1e-6)
    np.testing.assert_allclose(aggregate(probs, "last"), [0.8, 0.5, 0.9], rtol=1e-6)
    np.testing.assert_allclose(aggregate(probs, "product"), [0.9 * 0.2 * 0.8, 0.5, 0.81], rtol=1e-6)


@pytest.mark.parametrize(("agg", "expected"), [("min", [0.2, 0.5]), ("last", [0.8, 0.5]),
                                               ("product", [0.144, 0.5])])
def test_scorer_aggregates_monkeypatched_step_probabilities(prm_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                             agg: str, expected: list[float]) -> None:
    seen: list[list[int]] = []

    def fake(model, pad_id, encodings, **kw):  # type: ignore[no-untyped-def]
        seen.append([e.steps_total for e in encodings])
        return [np.array([0.9, 0.2, 0.8], dtype=np.float32), np.array([0.5], dtype=np.float32)]

    monkeypatch.setattr(prm_scorer, "step_probabilities", fake)
    scorer = build_scorer(f"prm:{prm_dir}#agg={agg}")
    out = scorer.score([USER, USER], [[{"role": "assistant", "content": "a\nb\n\nc"}],
                                      [{"role": "assistant", "content": "one step"}]], False)
    np.testing.assert_allclose(out.rewards, expected, rtol=1e-6)
    assert seen == [[3, 1]]  # the responses were split into 3 and 1 steps


def test_step_scores_and_reward_of_the_real_model(prm_dir: Path) -> None:
    scorer = build_scorer(f"prm:{prm_dir}")
    responses = [[{"role": "assistant", "content": "2+2 = 4.\nAnswer: yes"}],
                 [{"role": "assistant", "content": "2+2 = 5.\n\nSo no.\nAnswer: no"}]]
    steps = scorer.step_scores([USER, USER], responses, False)  # type: ignore[attr-defined]
    assert [len(s) for s in steps] == [2, 3]
    assert all(((s > 0) & (s < 1)).all() for s in steps)
    np.testing.assert_allclose(scorer.score([USER, USER], responses, False).rewards, [s.min() for s in steps],
                               rtol=1e-6)
    last = build_scorer(f"prm:{prm_dir}#agg=last").score([USER, USER], responses, False).rewards
    np.testing.assert_allclose(last, [s[-1] for s in steps], rtol=1e-6)


def test_not_a_prm_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a PRM folder"):
        build_scorer(f"prm:{tmp_path}")


def test_best_of_n_with_a_prm(prm_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm = tiny_llama(tmp_path / "lm")
    policy = policy_from_model(AutoModelForCausalLM.from_pretrained(lm), AutoTokenizer.from_pretrained(lm), "tiny")
    scorer = build_scorer(f"prm:{prm_dir}")
    results = best_of_n(policy, scorer, ["Is 2+2 4?"], n=3, sampling=SamplingConfig(max_new_tokens=8, seed=1))
    r = results[0]
    direct = scorer.score([USER] * 3, [[{"role": "assistant", "content": c.text}] for c in r.candidates], False)
    np.testing.assert_allclose([c.score for c in r.candidates], direct.rewards, rtol=1e-6)
    assert r.best.score == pytest.approx(float(direct.rewards.max()))
