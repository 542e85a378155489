"""The shortcut audit's arithmetic on a toy set worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from rewardkit.synth import audit

SHORT, LONG = "Short one.", "This answer is far too long."


def row(prompt_id: str, group: str, constraints: list[dict[str, Any]], chosen: str, rejected: str,
        chosen_source: str = "sample", rejected_source: str = "sample") -> dict[str, Any]:
    return {"prompt": [{"role": "user", "content": f"prompt {prompt_id}"}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "prompt_id": prompt_id, "group": group, "constraints": constraints,
            "chosen_source": chosen_source, "rejected_source": rejected_source}


MAX5 = [{"kind": "max_words", "params": {"n": 5}}]
MIN5 = [{"kind": "min_words", "params": {"n": 5}}]
QUESTION = [{"kind": "end_with_question", "params": {}}]
SURE = [{"kind": "include_keyword", "params": {"keyword": "sure"}}]

# r1, r2: a counterfactual twin (the same two responses, each preferred under one prompt);
# r3: an edit beats a sample; r4: two samples.
TOY = [
    row("p1", "g1", MAX5, SHORT, LONG, "sample", "edit:extend"),
    row("p2", "g1", MIN5, LONG, SHORT, "edit:extend", "sample"),
    row("p3", "g2", QUESTION, "Why?", "No.", "edit:truncate+append_question", "sample"),
    row("p4", "g3", SURE, "Yes, sure.", "Maybe."),
]


def test_rule_credit_and_edit_count() -> None:
    assert audit.rule_credit([3, 1, 2], [1, 3, 2]).tolist() == [1.0, 0.0, 0.5]
    assert [audit.edit_count(s) for s in ("sample", "edit:extend", "edit:truncate+to_json")] == [0, 1, 2]
    assert audit.decided_accuracy(np.array([1.0, 0.5, 0.0, 1.0])) == pytest.approx(2 / 3)
    assert math.isnan(audit.decided_accuracy(np.array([0.5])))


def test_shortcut_baselines_by_hand() -> None:
    base = audit.shortcut_baselines(TOY)
    # edited wins: r1 the sample beat the edit (0), r2 and r3 the edit won (1, 1), r4 no edit (0.5)
    assert base["edited_wins"].tolist() == [0.0, 1.0, 1.0, 0.5]
    assert base["more_edits_wins"].tolist() == [0.0, 1.0, 1.0, 0.5]  # r3: 2 edits vs 0
    # characters: 10 vs 28, 28 vs 10, 4 vs 3, 10 vs 6
    assert base["longer_wins"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert base["shorter_wins"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert set(base) == {"edited_wins", "more_edits_wins", "longer_wins", "shorter_wins", "prompt_swap_gold"}
    plain = [{k: v for k, v in r.items() if k not in ("chosen_source", "constraints")} for r in TOY]
    assert set(audit.shortcut_baselines(plain)) == {"longer_wins", "shorter_wins"}  # what the rows allow


def test_gold_credit_and_differing_kinds() -> None:
    assert audit.gold_credit(TOY).tolist() == [1.0, 1.0, 1.0, 1.0]  # every toy pair is right by its gold
    two = row("p", "g", MAX5 + QUESTION, "Why not?", "Because it is far too long!")
    assert audit.differing_kinds(two) == ["end_with_question", "max_words"]
    assert audit.differing_kinds(row("p", "g", MAX5 + QUESTION, "Yes.", "No.")) == []


def test_prompt_blind_ceiling_by_hand() -> None:
    """r1/r2 hold the same two responses in both orders: a prompt-blind scorer gets one of them; r3
    and r4 it can get right: (1 + 1 + 1) / 4."""
    assert audit.prompt_blind_ceiling(TOY) == 0.75
    assert audit.prompt_blind_ceiling(TOY[:2]) == 0.5
    assert audit.prompt_blind_ceiling(TOY[2:]) == 1.0
    assert audit.prompt_blind_ceiling([*TOY[:2], TOY[0]]) == pytest.approx(2 / 3)


def test_swap_prompts_takes_another_groups_prompt() -> None:
    """With two groups, rows of g1 can only get p3's prompt; r3 gets p1's or p2's. Under the swapped
    instructions the verifiers see no difference on any pair: end with "?" is met by neither SHORT nor
    LONG; "Why?" and "No." are both under 5 words and both short of 5."""
    rows = TOY[:3]
    swapped = audit.swap_prompts(rows, seed=0)
    assert swapped == audit.swap_prompts(rows, seed=0)
    assert [s["swapped_from"] for s in swapped[:2]] == ["p3", "p3"]
    assert swapped[2]["swapped_from"] in ("p1", "p2")
    for r, s in zip(rows, swapped, strict=True):
        donor = next(d for d in rows if d["prompt_id"] == s["swapped_from"])
        assert s["prompt"] == donor["prompt"] and s["constraints"] == donor["constraints"]
        assert (s["chosen"], s["rejected"], s["group"]) == (r["chosen"], r["rejected"], r["group"])
    assert audit.gold_credit(swapped).tolist() == [0.5, 0.5, 0.5]
    assert audit.shortcut_baselines(rows)["prompt_swap_gold"].tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="at least two"):
        audit.swap_prompts(TOY[:2])


def test_hide_prompt() -> None:
    hidden = audit.hide_prompt(TOY)
    assert all(h["prompt"] == [{"role": "user", "content": "Respond."}] for h in hidden)
    assert [h["chosen"] for h in hidden] == [r["chosen"] for r in TOY] and TOY[0]["prompt"][0]["content"] == "prompt p1"


def test_feature_credits_by_hand() -> None:
    credits = audit.feature_credits(TOY, audit.GENERIC_FEATURES)
    assert credits["ends_with_question"].tolist() == [0.5, 0.5, 1.0, 0.5]
    assert credits["commas"].tolist() == [0.5, 0.5, 0.5, 1.0]
    assert credits["words"].tolist() == [0.0, 1.0, 0.5, 1.0]  # 2 vs 6, 6 vs 2, 1 vs 1, 2 vs 1


def test_fit_probe_known_value() -> None:
    """One feature, two pairs with difference 1, L2 = 1: the loss 2 log(1 + e^-w) + w^2 / 2 is smallest
    where w = 2 / (1 + e^w), i.e. w = 0.6749 (to 4 places)."""
    w = audit.fit_probe(np.array([[1.0], [1.0]]), l2=1.0)
    assert w[0] == pytest.approx(2 / (1 + math.exp(w[0])), abs=1e-12)
    assert w[0] == pytest.approx(0.6749, abs=1e-4)
    assert audit.fit_probe(np.array([[1.0, 2.0], [-1.0, -2.0]])).tolist() == [0.0, 0.0]  # symmetric


def test_surface_probe() -> None:
    """Trained where the longer response always wins, the probe picks the longer one; trained on twins
    it has no opinion (0.5 on every pair)."""
    longer = [row("a", "g", MAX5, LONG, SHORT), row("b", "g", MAX5, "A much longer reply, friend.", "Hi.")]
    features = {"chars": audit.GENERIC_FEATURES["chars"]}
    assert audit.surface_probe(longer, TOY, features).tolist() == [0.0, 1.0, 1.0, 1.0]
    assert audit.surface_probe(TOY[:2], TOY, audit.GENERIC_FEATURES).tolist() == [0.5] * 4


def test_audit_pairs_on_twins_is_chance() -> None:
    out = audit.audit_pairs(TOY[:2], TOY[:2], audit.GENERIC_FEATURES)
    assert out["pairs"] == 2
    for key in ("edited_wins", "more_edits_wins", "longer_wins", "shorter_wins", "surface_probe",
                "prompt_blind_ceiling"):
        assert out[key] == 0.5, key
    assert out["edited_wins_decided"] == 0.5 and out["edited_wins_decides_share"] == 1.0
    assert out["worst_surface_rule"]["accuracy"] == 0.5
    full = audit.audit_pairs(TOY, TOY, audit.GENERIC_FEATURES)
    assert full["edited_wins"] == 0.625 and full["edited_wins_decided"] == pytest.approx(0.6667, abs=1e-4)
    assert full["worst_surface_rule"] == {"name": "more chars wins", "accuracy": 0.75}
