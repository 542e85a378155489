"""``--pessimism k``: every reward becomes r − k·U, end to end through ``rewardkit score`` (k = 0 and k = 2 on
the same fitted model: the scores differ by exactly 2·U); a scorer without uncertainty, or a bad k, is one
line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardkit.cli import main
from rewardkit.errors import OptionError
from rewardkit.scoring import PessimisticScorer, ScorerOptions, build_scorer, pessimistic
from rewardkit.types import ScoreOutput
from tiny_models import tiny_bert, write_pairs

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pessimism")
    pairs = write_pairs(root / "pairs.jsonl")
    fitted = tiny_bert(root / "fitted")
    assert main(["uncertainty", "fit", "--model", str(fitted), "--data", str(pairs), "--device", "cpu"]) == 0
    return {"pairs": pairs, "fitted": fitted, "plain": tiny_bert(root / "plain", seed=1), "root": root}


def _score(files: dict[str, Path], model: str, *extra: str) -> list[dict]:
    out = files["root"] / f"out-{len(list(files['root'].glob('out-*')))}.jsonl"
    assert main(["score", "--model", model, "--data", str(files["pairs"]), "--out", str(out), "--device", "cpu",
                 *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_score_writes_r_minus_k_u_and_the_uncertainty_of_each_response(files: dict[str, Path]) -> None:
    plain = _score(files, str(files["fitted"]))
    pess = _score(files, str(files["fitted"]), "--pessimism", "2")
    assert len(plain) == len(pess) == 12
    for a, b in zip(plain, pess, strict=True):
        for side in ("chosen", "rejected"):
            u = a[f"{side}_uncertainty"]
            assert u > 0 and b[f"{side}_uncertainty"] == u  # the uncertainty is written as it is
            assert b[f"{side}_score"] == pytest.approx(a[f"{side}_score"] - 2 * u, abs=1e-6)


def test_pessimism_arithmetic_on_a_toy_output() -> None:
    out = ScoreOutput(np.array([1.0, 0.5, -1.0], np.float32), np.zeros(3, bool),
                      uncertainty=np.array([0.25, 0.0, 2.0], np.float32))
    got = pessimistic(out, 0.5)
    np.testing.assert_allclose(got.rewards, [1.0 - 0.125, 0.5, -1.0 - 1.0])  # r − 0.5·U
    np.testing.assert_array_equal(got.uncertainty, out.uncertainty)
    with pytest.raises(OptionError, match="needs a scorer that reports uncertainty"):
        pessimistic(ScoreOutput(out.rewards, out.truncated), 1.0)


def test_a_scorer_that_does_not_say_is_refused_at_its_first_output() -> None:
    from rewardkit.scoring import LengthScorer, PessimisticScorer

    class Quiet(LengthScorer):
        yields_uncertainty = None  # type: ignore[assignment]  # unknown until it scores

    wrapped = PessimisticScorer(Quiet(), 1.0)
    with pytest.raises(OptionError, match="needs a scorer that reports uncertainty"):
        wrapped.score([[{"role": "user", "content": "q"}]], [[{"role": "assistant", "content": "a"}]])


def test_build_scorer_wraps_once_and_the_cache_identity_names_k(files: dict[str, Path]) -> None:
    from rewardkit.scorers import scorer_identity

    opts = ScorerOptions(device="cpu", dtype="float32", pessimism=1.5)
    scorer = build_scorer(str(files["fitted"]), opts)
    assert isinstance(scorer, PessimisticScorer) and not isinstance(scorer.inner, PessimisticScorer)
    assert scorer.k == 1.5 and scorer.rm is scorer.inner.rm  # the server reads rm/encode through the wrapper
    assert scorer_identity(scorer, opts)["pessimism"] == 1.5
    assert not isinstance(build_scorer(str(files["fitted"]), ScorerOptions(device="cpu")), PessimisticScorer)


@pytest.mark.parametrize("model,k,message", [
    ("plain", "1", "needs a scorer that reports uncertainty"),  # refused when built
    ("length", "1", "needs a scorer that reports uncertainty"),  # says it has none: refused when built
    ("fitted", "-1", "--pessimism must be a finite number >= 0"),
    ("fitted", "nan", "--pessimism must be a finite number >= 0"),
])
def test_refusals_are_one_line_and_exit_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str], model: str,
                                          k: str, message: str) -> None:
    spec = str(files[model]) if model in files else model
    code = main(["score", "--model", spec, "--data", str(files["pairs"]), "--out", str(files["root"] / "x.jsonl"),
                 "--device", "cpu", "--pessimism", k])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_a_direction_over_a_fitted_model_carries_its_uncertainty(files: dict[str, Path]) -> None:
    """The last-layer U describes the features every output is read from: ``direction:`` reports the same
    U as the model's own scorer, and ``--pessimism`` subtracts it from the direction's reward."""
    plain = _score(files, str(files["fitted"]))
    spec = f"direction:{files['fitted']}#reward=1"
    direction = _score(files, spec)
    pess = _score(files, spec, "--pessimism", "0.5")
    for a, d, p in zip(plain, direction, pess, strict=True):
        for side in ("chosen", "rejected"):
            assert d[f"{side}_uncertainty"] == pytest.approx(a[f"{side}_uncertainty"], rel=1e-6)
            assert d[f"{side}_score"] == pytest.approx(a[f"{side}_score"], abs=1e-6)  # one output: v = (1,)
            assert p[f"{side}_score"] == pytest.approx(d[f"{side}_score"] - 0.5 * d[f"{side}_uncertainty"], abs=1e-6)
    assert build_scorer(spec, ScorerOptions(device="cpu")).yields_uncertainty is True
