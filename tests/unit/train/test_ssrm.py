"""SSRM (``rewardkit train ssrm``): the confidence filter by hand, pseudo-labels that are the round model's own
preference probabilities, a one-round run end to end on a tiny Llama, round 0 = ``train rm``, the seeded
labelled split, pseudo-label accuracy with a scripted (``length``) model, and the command's bad-input exits."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rewardkit.cli import main
from rewardkit.data.dataset import iter_examples
from rewardkit.errors import OptionError
from rewardkit.scorers.preference import preference_probabilities
from rewardkit.scoring import LengthScorer, ScorerOptions, build_scorer
from rewardkit.train import ssrm
from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.reward import train_reward_model
from rewardkit.train.ssrm import (
    SsrmTrainConfig,
    label_accuracy,
    prepare_inputs,
    pseudo_rows,
    select_confident,
    split_labeled,
)
from tiny_models import PAIRS, tiny_llama, write_pairs

TRAIN = {"max_steps": 2, "lr": 1e-3, "warmup_ratio": 0.0, "batch_size": 4, "max_length": 64, "device": "cpu",
         "precision": "fp32", "logging_steps": 1}
TRAIN_FLAGS = ["--max-steps", "2", "--lr", "1e-3", "--warmup-ratio", "0", "--batch-size", "4", "--max-length", "64",
               "--device", "cpu", "--precision", "fp32"]


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def dump_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _pair(chosen: str, rejected: str, prompt: str = "Q?") -> dict[str, Any]:
    return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


# ----------------------------------------------------------------------------- selection by hand


def test_select_confident_keeps_strictly_above_the_threshold_and_orients_by_the_model() -> None:
    p = np.array([0.8, 0.2, 0.5, 0.81, 0.19, 0.95, 0.05, 0.6, 1.0, 0.0])
    sel = select_confident(p, 0.8)
    # confidence max(p, 1-p): .8 .8 .5 .81 .81 .95 .95 .6 1 1 -> kept only where > 0.8 (0.8 itself is not)
    assert sel.keep.tolist() == [False, False, False, True, True, True, True, False, True, True]
    # swapped: kept and the model prefers the second response (p < 0.5)
    assert sel.swap.tolist() == [False, False, False, False, True, False, True, False, False, True]


def test_a_tie_is_never_kept_and_threshold_one_keeps_nothing() -> None:
    p = np.array([0.5, 0.5000001, 0.4999999, 1.0, 0.0])
    assert select_confident(p, 0.5).keep.tolist() == [False, True, True, True, True]
    assert select_confident(p, 0.5).swap.tolist() == [False, False, True, False, True]
    assert not select_confident(p, 1.0).keep.any()  # conf = 1.0 is not > 1.0


def test_pseudo_rows_orient_the_kept_pairs_and_drop_input_margins(tmp_path: Path) -> None:
    u = dump_jsonl(tmp_path / "u.jsonl", [{**_pair("A1", "B1"), "margin": 2.0, "source": "x"}, _pair("A2", "B2"),
                                          _pair("A3", "B3")])
    pairs = [e for _, e in iter_examples(u)]
    p = np.array([0.1, 0.7, 0.95])
    rows = pseudo_rows(pairs, p, select_confident(p, 0.8))
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [("B1", "A1"), ("A3", "B3")]
    assert [r["ssrm_swapped"] for r in rows] == [True, False]
    assert [r["ssrm_p"] for r in rows] == [0.1, 0.95] and rows[0]["ssrm_confidence"] == 0.9
    assert "margin" not in rows[0] and rows[0]["source"] == "x"  # other input fields are kept


def test_label_accuracy_by_hand() -> None:
    p = np.array([0.9, 0.1, 0.6, 0.5])  # the first response is the truth: correct where p > 0.5, a tie half
    keep = np.array([True, True, False, False])
    kept, scored = label_accuracy(p, keep)
    assert kept == 0.5  # 0.9 right, 0.1 wrong
    assert scored == (1 + 0 + 1 + 0.5) / 4
    assert label_accuracy(p, np.zeros(4, bool))[0] is None


def test_split_labeled_is_seeded_disjoint_and_complete() -> None:
    a, rest = split_labeled(12, 0.25, seed=3)
    assert len(a) == 3 and len(rest) == 9
    assert sorted([*a.tolist(), *rest.tolist()]) == list(range(12))
    assert np.array_equal(a, split_labeled(12, 0.25, seed=3)[0])
    assert not np.array_equal(a, split_labeled(12, 0.25, seed=4)[0])  # seeds 3 and 4 draw different sets
    assert len(split_labeled(12, 0.01, seed=0)[0]) == 1  # at least one labelled pair
    assert len(split_labeled(12, 1.0, seed=0)[1]) == 0


@pytest.mark.parametrize("bad", [{"rounds": -1}, {"threshold": 0.49}, {"threshold": 1.01},
                                 {"labeled_fraction": 0.0}, {"init": "random"},
                                 {"head": {"kind": "multi", "objectives": ["a", "b"]}}, {"ensemble": 2},
                                 {"resume": "latest"}])
def test_config_refuses(bad: dict[str, Any]) -> None:
    with pytest.raises(OptionError):
        SsrmTrainConfig(data="l.jsonl", unlabeled="u.jsonl", **bad)


# ----------------------------------------------------------------------------- end to end on a tiny backbone


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ssrm")
    return {"llama": tiny_llama(root / "llama"), "labeled": write_pairs(root / "labeled.jsonl"),
            "unlabeled": write_pairs(root / "unlabeled.jsonl", conversational=False), "root": root}


@pytest.fixture(scope="module")
def one_round(files: dict[str, Path]) -> tuple[Path, str]:
    """One SSRM round through the command line; threshold 0.5 keeps every pair the model does not tie."""
    out = files["root"] / "one-round"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", "ssrm", "--labeled", str(files["labeled"]), "--unlabeled", str(files["unlabeled"]),
                     "--model", str(files["llama"]), "--rounds", "1", "--threshold", "0.5", "--out", str(out),
                     "--eval-data", str(files["labeled"]), "--unlabeled-has-labels", *TRAIN_FLAGS])
    assert code == 0
    return out, printed.getvalue()


def test_one_round_report_and_files_agree(one_round: tuple[Path, str]) -> None:
    out, printed = one_round
    report = json.loads((out / "ssrm.json").read_text())
    r0, r1 = report["rounds"]
    pseudo = _rows(out / "rounds" / "round-1" / "pseudo.jsonl")
    assert r0["round"] == 0 and r0["train_pairs"] == len(PAIRS) and r0["kept"] == 0
    assert r1["pseudo_labeled"] == len(PAIRS)
    assert r1["kept"] == len(pseudo) == len(PAIRS)  # threshold 0.5: every non-tie kept
    assert r1["kept_fraction"] == 1.0
    assert r1["swapped"] == sum(r["ssrm_swapped"] for r in pseudo)
    assert r1["train_pairs"] == len(PAIRS) + r1["kept"] == len(_rows(out / "rounds" / "round-1" / "train.jsonl"))
    # U is PAIRS in its true order: a kept pseudo-label is right exactly when it was not swapped
    assert r1["pseudo_label_accuracy"] == pytest.approx(1 - r1["swapped"] / r1["kept"])
    for r in (r0, r1):
        h = r["heldout"]
        assert h["ci95_low"] <= h["accuracy"] <= h["ci95_high"] and h["pairs"] == len(PAIRS)
        assert r["seconds"] > 0
    assert report["options"]["threshold"] == 0.5 and report["options"]["init"] == "previous"
    assert report["final"]["round"] == 1
    assert [line.split(":")[0] for line in printed.splitlines()[:2]] == ["round 0", "round 1"]
    # init previous: round 1 fine-tunes round 0's model
    assert yaml.safe_load((out / "rounds" / "round-1" / "config.yaml").read_text())["model"] == \
        str(out / "rounds" / "round-0")


def test_pseudo_labels_are_the_round_models_preference_probabilities(one_round: tuple[Path, str],
                                                                    files: dict[str, Path]) -> None:
    out, _ = one_round
    pairs = [e for _, e in iter_examples(files["unlabeled"])]
    # the same token budget as the run's pseudo-labelling (its eval_batch_tokens), so the same batches and
    # the same float32 sums: equal to 1e-12 (other budgets agree to ~1e-8 only)
    budget = json.loads((out / "ssrm.json").read_text())["train_config"]["eval_batch_tokens"]
    scorer = build_scorer(f"rm:{out / 'rounds' / 'round-0'}",
                          ScorerOptions(device="cpu", dtype="float32", batch_tokens=budget))
    want = preference_probabilities(scorer, [e.prompt for e in pairs], [e.chosen for e in pairs],
                                    [e.rejected for e in pairs], [e.conversational for e in pairs]).p_first
    pseudo = _rows(out / "rounds" / "round-1" / "pseudo.jsonl")
    np.testing.assert_allclose([r["ssrm_p"] for r in pseudo], want, rtol=0, atol=1e-12)
    for row, e, p in zip(pseudo, pairs, want, strict=True):
        assert row["ssrm_swapped"] == (p < 0.5)
        assert row["ssrm_confidence"] == pytest.approx(max(p, 1 - p))
        first, second = (e.rejected, e.chosen) if p < 0.5 else (e.chosen, e.rejected)
        assert (row["chosen"], row["rejected"]) == (first[0]["content"], second[0]["content"])  # plain text U


def test_the_final_folder_is_the_last_rounds_model(one_round: tuple[Path, str]) -> None:
    out, _ = one_round
    last = out / "rounds" / "round-1"
    assert (out / "model.safetensors").read_bytes() == (last / "model.safetensors").read_bytes()
    assert not (out / "pseudo.jsonl").exists() and not (out / "train.jsonl").exists()  # the model only
    prompts = [[{"role": "user", "content": p}] for p, _, _ in PAIRS]
    responses = [[{"role": "assistant", "content": c}] for _, c, _ in PAIRS]
    opts = ScorerOptions(device="cpu", dtype="float32")
    final = build_scorer(f"rm:{out}", opts).score(prompts, responses).rewards
    np.testing.assert_array_equal(final, build_scorer(str(last), opts).score(prompts, responses).rewards)
    assert len(set(final.tolist())) == len(PAIRS)  # a trained model, not a constant


def test_zero_rounds_is_train_rm(files: dict[str, Path], tmp_path: Path) -> None:
    cfg = SsrmTrainConfig(data=str(files["labeled"]), unlabeled=str(files["unlabeled"]), model=str(files["llama"]),
                          out=str(tmp_path / "ssrm"), rounds=0, **TRAIN)  # type: ignore[arg-type]
    result = ssrm.train_ssrm(cfg)
    plain = RewardTrainConfig(data=str(files["labeled"]), model=str(files["llama"]), out=str(tmp_path / "rm"),
                              **TRAIN)  # type: ignore[arg-type]
    train_reward_model(plain)
    assert [r["round"] for r in result.rounds] == [0]
    assert (tmp_path / "ssrm" / "model.safetensors").read_bytes() == (tmp_path / "rm" / "model.safetensors").read_bytes()
    assert not (tmp_path / "ssrm" / "rounds" / "round-1").exists()


# ----------------------------------------------------------------------------- labels known, scripted model

# U by hand, scored by response length (reward = characters): p = sigma(len(first) - len(second)).
# differences 3, -3, 1, 4 -> p = .953, .047, .731, .982; threshold 0.8 keeps 1st, 2nd (swapped), 4th.
HAND_U = [_pair("aaaa", "a"), _pair("b", "bbbb"), _pair("cc", "c"), _pair("ddddd", "d")]


def test_pseudo_label_accuracy_with_a_length_model(files: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # the round model is replaced by the `length` scorer for pseudo-labelling (training still runs)
    monkeypatch.setattr(ssrm, "build_scorer", lambda spec, opts: LengthScorer())
    u = dump_jsonl(tmp_path / "u.jsonl", [*HAND_U, {"prompt": "x", "chosen": "same", "rejected": "same"}])
    cfg = SsrmTrainConfig(data=str(files["labeled"]), unlabeled=str(u), model=str(files["llama"]), rounds=1,
                          out=str(tmp_path / "run"), unlabeled_has_labels=True, skip_invalid=True,
                          **{**TRAIN, "max_steps": 1})  # type: ignore[arg-type]
    r1 = ssrm.train_ssrm(cfg).rounds[1]
    assert (r1["pseudo_labeled"], r1["kept"], r1["swapped"]) == (4, 3, 1)
    assert r1["pseudo_label_accuracy"] == pytest.approx(2 / 3)  # the swapped pair contradicts U's order
    assert r1["scored_accuracy"] == pytest.approx(3 / 4)  # p > 0.5 for differences 3, 1, 4
    assert r1["kept_fraction"] == pytest.approx(3 / 4)
    report = json.loads((tmp_path / "run" / "ssrm.json").read_text())
    assert report["skipped_invalid"] == 1  # chosen == rejected
    pseudo = _rows(tmp_path / "run" / "rounds" / "round-1" / "pseudo.jsonl")
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in pseudo] == \
        [("aaaa", "a"), ("bbbb", "b"), ("ddddd", "d")]
    assert pseudo[1]["ssrm_p"] == pytest.approx(1 / (1 + math.exp(3)))


def test_labeled_fraction_split_is_deterministic_per_seed(files: dict[str, Path], tmp_path: Path) -> None:
    def split(seed: int, name: str) -> tuple[str, str, bool]:
        cfg = SsrmTrainConfig(data=str(files["labeled"]), labeled_fraction=0.25, seed=seed, out=str(tmp_path / name))
        inputs = prepare_inputs(cfg, tmp_path / name / "data")
        assert (len(inputs.labeled), len(inputs.unlabeled)) == (3, 9)
        data = tmp_path / name / "data"
        return (data / "labeled.jsonl").read_text(), (data / "unlabeled.jsonl").read_text(), inputs.labels_known

    first, again, other = split(7, "a"), split(7, "b"), split(8, "c")
    assert first == again and first[2] is True  # U taken from L: its labels are known
    assert first[0] != other[0]
    want = {PAIRS[i][1] for i in split_labeled(len(PAIRS), 0.25, 7)[0]}
    assert {r["chosen"][0]["content"] for r in map(json.loads, first[0].splitlines())} == want


# ----------------------------------------------------------------------------- the command line


def _ssrm(*args: str) -> list[str]:
    return ["train", "ssrm", *args, "--device", "cpu"]


@pytest.mark.parametrize("case", ["missing_u", "empty_u", "bad_record", "threshold", "rounds", "no_labeled", "no_u"])
def test_bad_input_exits_2_with_one_line(case: str, files: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    lab, unl = str(files["labeled"]), str(files["unlabeled"])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    bad = dump_jsonl(tmp_path / "bad.jsonl", [_pair("a", "b"), {"prompt": "x", "chosen": "y"}])
    out = ["--out", str(tmp_path / "run")]
    argv, named = {
        "missing_u": (_ssrm("--labeled", lab, "--unlabeled", str(tmp_path / "nope.jsonl"), *out), "nope.jsonl"),
        "empty_u": (_ssrm("--labeled", lab, "--unlabeled", str(empty), *out), "empty.jsonl"),
        "bad_record": (_ssrm("--labeled", lab, "--unlabeled", str(bad), *out), "bad.jsonl:2"),
        "threshold": (_ssrm("--labeled", lab, "--unlabeled", unl, "--threshold", "1.5", *out), "threshold"),
        "rounds": (_ssrm("--labeled", lab, "--unlabeled", unl, "--rounds", "-1", *out), "rounds"),
        "no_labeled": (_ssrm("--unlabeled", unl, *out), "--labeled"),
        "no_u": (_ssrm("--labeled", lab, *out), "--unlabeled"),
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run" / "rounds").exists()  # refused before anything trained


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", "ssrm", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--labeled", "--unlabeled", "--rounds", "--threshold", "--init", "--labeled-fraction",
                 "--unlabeled-has-labels", "--eval-data", "--epochs", "--lr", "--set"):
        assert flag in text
    assert "--attributes" not in text  # attribute-data settings of train rm do not apply
