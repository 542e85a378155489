"""ECE, reliability bins, log loss and Brier score of σ(Δ), checked on margins worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.eval.calibration import calibration, sigmoid


def test_by_hand() -> None:
    # margins 0 (a tie: confidence 0.5, wrong), ln 3 twice (σ = 0.75, right), -ln 3 (confidence 0.75, wrong)
    ln3 = math.log(3)
    c = calibration(np.array([0.0, ln3, ln3, -ln3]), n_bins=5)  # bins of width 0.1 over [0.5, 1]
    assert c.n == 4
    bins = {round(b.low, 1): b for b in c.bins}
    assert bins[0.5].count == 1 and bins[0.5].accuracy == 0.0 and bins[0.5].confidence == pytest.approx(0.5)
    assert bins[0.7].count == 3 and bins[0.7].accuracy == pytest.approx(2 / 3)
    assert bins[0.7].confidence == pytest.approx(0.75)
    # ECE = 1/4·|0 − 0.5| + 3/4·|2/3 − 0.75| = 0.125 + 0.0625
    assert c.ece == pytest.approx(0.1875)
    # log loss = mean softplus(−Δ) = (ln 2 + 2 ln(4/3) + ln 4) / 4
    assert c.log_loss == pytest.approx((math.log(2) + 2 * math.log(4 / 3) + math.log(4)) / 4)
    assert c.brier == pytest.approx((0.25 + 2 * 0.0625 + 0.5625) / 4)


def test_perfectly_calibrated_margins_have_small_ece() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, 200_000)
    outcome = rng.random(true.size) < sigmoid(true)  # chosen truly wins with probability σ(Δ)
    margins = np.where(outcome, np.abs(true), -np.abs(true)) * np.sign(true)
    assert calibration(margins).ece < 0.01


def test_extreme_margins_and_empty() -> None:
    c = calibration(np.array([1e6, -1e6]))
    assert math.isfinite(c.log_loss) and c.log_loss == pytest.approx(5e5)
    assert c.bins[-1].count == 2  # confidence 1.0 lands in the last bin
    empty = calibration(np.zeros(0))
    assert empty.n == 0 and math.isnan(empty.ece) and len(empty.bins) == 10
    assert set(empty.to_dict()) == {"n", "ece", "log_loss", "brier", "bins"}
