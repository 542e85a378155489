"""Selection rules: --keep parsing, top fraction per group, length balance by drop and by weight."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.curate.select import (
    KeepRule,
    balance_drop,
    balance_weights,
    longer_wins,
    parse_keep,
    selection_values,
    top_fraction,
)
from rewardkit.errors import OptionError


def test_parse_keep() -> None:
    assert parse_keep("agree") == KeepRule("agree")
    assert parse_keep("top:0.3") == KeepRule("top", 0.3)
    for bad in ("top:0", "top:1.5", "top:x", "best", "top"):
        with pytest.raises(OptionError, match="--keep"):
            parse_keep(bad)


def test_selection_values() -> None:
    c, r = np.array([3.0, 1.0]), np.array([1.0, 2.0])
    assert selection_values("margin", c, r).tolist() == [2.0, -1.0]
    assert selection_values("chosen", c, r).tolist() == [3.0, 1.0]
    assert selection_values("mean", c, r).tolist() == [2.0, 1.5]


def test_top_fraction_per_group_ceil_and_stable_ties() -> None:
    values = np.array([5.0, 1.0, 3.0, 9.0, 2.0, 2.0, 7.0])
    groups = np.array([0, 0, 0, 1, 1, 1, 1])
    # group 0 (3 pairs): ceil(0.5 * 3) = 2 best: rows 0, 2; group 1 (4 pairs): 2 best: rows 3, 6
    assert top_fraction(values, groups, 0.5).tolist() == [True, False, True, True, False, False, True]
    # group 0: ceil(0.75 * 3) = 3, all; group 1: ceil(0.75 * 4) = 3: rows 3, 6, then the tie 4 before 5
    assert np.flatnonzero(top_fraction(values, groups, 0.75)).tolist() == [0, 1, 2, 3, 4, 6]


def test_longer_wins() -> None:
    assert longer_wins(np.array([5, 5, 1, 3]), np.array([1, 2, 4, 3])) == pytest.approx(2 / 3)
    assert longer_wins(np.array([3]), np.array([3])) is None


def test_balance_drop_reaches_exactly_half() -> None:
    c = np.array([9, 9, 9, 9, 9, 1, 4, 7])  # 5 chosen-longer, 1 shorter, 2 equal
    r = np.array([1, 1, 1, 1, 1, 9, 4, 7])
    keep = balance_drop(c, r, seed=0)
    assert keep.sum() == 4 and keep[5:].all()  # 4 longer dropped, shorter and equal kept
    assert longer_wins(c[keep], r[keep]) == 0.5
    assert (balance_drop(c, r, seed=0) == keep).all()  # seeded


def test_balance_weights_by_hand() -> None:
    c = np.array([9, 9, 9, 1, 5])  # 3 chosen-longer, 1 shorter, 1 equal: U = 4
    r = np.array([1, 1, 1, 9, 5])
    w = balance_weights(c, r)
    assert w.tolist() == [4 / 6, 4 / 6, 4 / 6, 2.0, 1.0]  # U / (2L) = 4/6, U / (2S) = 2
    assert w[:3].sum() == pytest.approx(w[3])  # each side weighs U / 2 = 2
    assert balance_weights(np.array([9, 9]), np.array([1, 1])).tolist() == [1.0, 1.0]  # one side only
