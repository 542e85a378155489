"""Multi-objective + gating (ArmoRM) vs a scalar Bradley–Terry reward model on the ifeval-lite gold testbed.

Same backbone (``--model``, MiniLM by default) and the same shipped data for both, in one run:

- **ArmoRM** (``rewardkit train rm --head multi``, METHODS §2): stage 1, one ridge per objective on the
  frozen backbone's pooled features of the attribute rows (``objectives_train``: one row per (prompt,
  response), one column per instruction kind -- the verifier's verdict, null when the prompt has no
  instruction of that kind -- and ``verbosity``, the word count); verbosity debiasing on the preference
  pairs; stage 2, the gating network trained with the BT loss on the preference pairs (``train``).
  ``--gate-epochs`` passes, batch ``--gate-batch``, lr ``--gate-lr``.
- **Scalar BT** (``rewardkit train rm``, the default head): the whole backbone fine-tuned on the same
  preference pairs as the quickstart trains it (batch 8, lr 1e-4, max length 256, seed 42, two epochs;
  ``--bt-epochs``). No pessimism: the plain reward.
- **Frozen linear BT** (a control, not a rewardkit command): a logistic BT model on the same frozen pooled
  features ArmoRM's objectives read, L2 penalty picked on a held-out fifth of the training families. It
  separates "multi-objective + gate" from "fine-tuned vs frozen".

Reported, on the held-out test set (``test`` pairs, ``objectives_test`` rows):

- pairwise accuracy of each model (a tie is wrong) with a 95% bootstrap interval, and ArmoRM minus BT
  per pair (paired bootstrap);
- per objective (instruction kind, and verbosity): on the test pairs whose prompt has that kind and whose
  two responses get different verdicts, how often ArmoRM's objective output -- and, for comparison, its
  gated scalar, the scalar BT's reward and the frozen linear BT's -- orders them as the verifier does; the
  same on pairs of test rows under one prompt whose labels differ (``rows``); and the objective output's
  Pearson and Spearman correlation with its label on the labelled test rows;
- the gate: mean and std over the test pairs' inputs (chosen and rejected) of each objective's weight and
  of its coefficient after the verbosity transform (``w Tᵀ``, what multiplies the objectives), the learnt
  ``logit_scale``, and the mean largest weight share and entropy of the per-example weights.

ArmoRM's outputs are computed from the frozen features by the head's own code (one forward gives the
objectives, the scalar and the gate weights); ``armo.scorer_check`` compares them with rewardkit's scorer on
the saved folder for the first test items. With an encoder backbone (MiniLM) the gate's input, the hidden
state at the prompt's last token, also sees the response (attention is bidirectional): the gate is not
prompt-only as with ArmoRM's decoder.

Budget (the defaults): the work is forward passes of the frozen backbone -- ArmoRM's features of every
attribute row (4,078) and train pair input (1,936), then both models on the test pairs' inputs (496) and
rows (1,074) -- and the BT's two epochs (242 steps of batch 8); the gate (20 epochs, ~600 steps on
features) takes seconds. Measured per unit on 2 shared cores: ~0.045 CPU-s per forward sequence, ~0.27
CPU-s per BT training pair, so ~930 CPU-s in all: about 8-11 minutes on two idle cores with ``--threads 2``.
``cpu_seconds`` in the report is the run's own CPU time, whatever else shared the cores.

The shipped files are copied into ``--workdir`` first (sha256 in the report) so a regeneration during the
run cannot mix two sets; ``--data-dir`` reads a set written by ``rewardkit data synth`` instead. Trained
models and scores are kept in ``--workdir`` and reused when their settings match.

    python benchmarks/multi_objective.py --workdir runs/mo --out benchmarks/results/multi_objective.json
    python benchmarks/multi_objective.py --quick    # smoke run: a few steps, a slice of the data
    python benchmarks/multi_objective.py --skip-bt --workdir runs/mo   # ArmoRM vs the frozen linear BT only

Prints one JSON object on stdout (progress on stderr) and writes it to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run_json_main

FILES = ("train", "test", "objectives_train", "objectives_test")
VERBOSITY = "verbosity"
MIN_LABELS = 5  # an objective with fewer labelled training rows is not fitted (listed in the report)
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def log(message: str) -> None:
    print(f"[multi_objective] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- pure helpers (unit-tested)


def kind_labels(constraints: Sequence[Mapping[str, Any]], text: str) -> dict[str, float]:
    """Per instruction kind of ``constraints``, the share of that kind's instructions ``text`` meets (the
    objective rows' definition: 1/0, 0.5 when one of two is met), plus ``verbosity`` (words)."""
    from rewardkit.verify.verifiers import Constraint, count_words

    by_kind: dict[str, list[float]] = {}
    for c in constraints:
        con = Constraint.from_dict(dict(c))
        by_kind.setdefault(con.kind, []).append(float(con.check(text)))
    return {**{k: sum(v) / len(v) for k, v in by_kind.items()}, VERBOSITY: float(count_words(text))}


def order_correct(label_diff: np.ndarray, score_diff: np.ndarray) -> np.ndarray:
    """For items whose labels differ (``label_diff`` (N,) nonzero and not NaN), 1.0 where ``score_diff`` has
    the label's sign, 0.0 otherwise (a score tie is wrong); returns only those items, in order."""
    label_diff, score_diff = np.asarray(label_diff, dtype=np.float64), np.asarray(score_diff, dtype=np.float64)
    keep = ~np.isnan(label_diff) & (label_diff != 0)
    return (np.sign(score_diff[keep]) == np.sign(label_diff[keep])).astype(np.float64)


def row_pairs(groups: Sequence[str], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(i, j)``, i < j, of the row pairs in the same group whose labels (N,) are both present
    and differ, ordered by i then j."""
    labels = np.asarray(labels, dtype=np.float64)
    by_group: dict[str, list[int]] = {}
    for n, g in enumerate(groups):
        if not np.isnan(labels[n]):
            by_group.setdefault(g, []).append(n)
    pairs = [(a, b) for rows in by_group.values() for x, a in enumerate(rows) for b in rows[x + 1:]
             if labels[a] != labels[b]]
    pairs.sort()
    i = np.array([a for a, _ in pairs], dtype=np.int64)
    j = np.array([b for _, b in pairs], dtype=np.int64)
    return i, j


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation; NaN with fewer than two items or a constant side."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a**2).sum() * (b**2).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def gate_spread(weights: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Spread of per-example gate weights (N, K): per objective mean and std (population) over examples,
    and the mean over examples of the largest weight's share and of the entropy (nats) of the weights
    normalised to sum to 1 (log K is a uniform gate)."""
    w = np.asarray(weights, dtype=np.float64)
    share = w / w.sum(1, keepdims=True)
    entropy = -(share * np.log(np.clip(share, 1e-300, None))).sum(1)
    return {"per_objective": {n: {"mean": float(w[:, k].mean()), "std": float(w[:, k].std())}
                              for k, n in enumerate(names)},
            "max_share_mean": float(share.max(1).mean()), "entropy_mean": float(entropy.mean()),
            "entropy_uniform": math.log(w.shape[1]), "examples": int(w.shape[0])}


# ----------------------------------------------------------------------------- data


def pin_data(source: Path | None, workdir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Copies of the four files in ``workdir/data`` (from ``source`` or the shipped set) and their sha256."""
    from rewardkit.synth import load_embedded
    from rewardkit.synth.core import EMBEDDED_FILES

    folder = workdir / "data"
    folder.mkdir(parents=True, exist_ok=True)
    paths, shas = {}, {}
    for name in FILES:
        src = source / EMBEDDED_FILES[name] if source is not None else load_embedded(name)
        paths[name] = Path(shutil.copy(src, folder / EMBEDDED_FILES[name]))
        shas[name] = hashlib.sha256(paths[name].read_bytes()).hexdigest()
    return paths, shas


def read_rows(path: Path) -> list[dict[str, Any]]:
    from rewardkit.data.io import iter_records

    return [r for _, r in iter_records(path)]


def quick_slice(paths: dict[str, Path], workdir: Path, args: argparse.Namespace) -> dict[str, Path]:
    """``--quick``: the first rows of each file (whole families are not needed for a smoke run)."""
    from rewardkit.synth.core import write_jsonl

    keep = {"train": args.quick_rows, "test": args.quick_rows // 2, "objectives_train": 4 * args.quick_rows,
            "objectives_test": 2 * args.quick_rows}
    out = {}
    for name, path in paths.items():
        out[name] = workdir / "data" / f"quick_{name}.jsonl"
        write_jsonl(out[name], read_rows(path)[: keep[name]])
    return out


def objective_names(path: Path) -> tuple[list[str], dict[str, int]]:
    """The kinds with at least :data:`MIN_LABELS` labelled rows in ``path`` (then verbosity), and every
    kind's count of labelled rows."""
    from rewardkit.synth.core import OBJECTIVE_KINDS

    counts = dict.fromkeys(OBJECTIVE_KINDS, 0)
    for r in read_rows(path):
        for k in OBJECTIVE_KINDS:
            counts[k] += r.get(k) is not None
    return [k for k in OBJECTIVE_KINDS if counts[k] >= MIN_LABELS] + [VERBOSITY], counts


# ----------------------------------------------------------------------------- training


def trained(out: Path, settings: dict[str, Any], train: Any, *, also: Sequence[Path] = ()) -> dict[str, Any]:
    """Train into ``out`` unless it (and every file in ``also``) holds a model trained with ``settings``;
    returns its rewardkit.json."""
    stamp = out.parent / f"{out.name}.settings.json"
    present = (out / "rewardkit.json").exists() and all(p.exists() for p in also)
    if present and stamp.exists() and json.loads(stamp.read_text()) == settings:
        log(f"reusing {out}")
    else:
        if out.exists():
            shutil.rmtree(out)
        t0 = time.perf_counter()
        train()
        log(f"trained {out.name} in {time.perf_counter() - t0:.0f} s")
        stamp.write_text(json.dumps(settings, indent=2) + "\n")
    return json.loads((out / "rewardkit.json").read_text())


def train_armo(paths: dict[str, Path], names: Sequence[str], out: Path, args: argparse.Namespace,
               shas: dict[str, str]) -> dict[str, Any]:
    """``rewardkit train rm --head multi`` (what ``train_reward_model`` runs on attribute data: read the
    features once, then stage 1, debiasing and stage 2); keeps the train pairs' frozen pooled features
    (``out``.pairs.npz) for the linear BT control."""
    from rewardkit.train import attributes
    from rewardkit.train.config import RewardTrainConfig

    settings = {"data": str(paths["objectives_train"]), "pairs": str(paths["train"]), "attributes": ",".join(names),
                "model": args.model, "lr": args.gate_lr, "batch_size": args.gate_batch, "epochs": args.gate_epochs,
                "max_steps": args.max_steps, "max_length": args.max_length, "seed": args.seed, "head": {"kind": "multi"}}
    cfg = RewardTrainConfig(out=str(out), logging_steps=50, device="cpu", **settings)
    settings = {**settings, "quick": args.quick, "sha256": shas}
    pairs_file = out.parent / f"{out.name}.pairs.npz"

    def train() -> None:
        prep = attributes.prepare(cfg)
        attributes.train_armo(cfg, prep)
        assert prep.pairs is not None
        np.savez(pairs_file, chosen=prep.pairs.chosen.pooled.numpy(), rejected=prep.pairs.rejected.pooled.numpy())

    return trained(out, settings, train, also=[pairs_file])


def train_bt(paths: dict[str, Path], out: Path, args: argparse.Namespace, shas: dict[str, str]) -> dict[str, Any]:
    from rewardkit.quickstart import BATCH_SIZE, LR
    from rewardkit.train.config import RewardTrainConfig
    from rewardkit.train.reward import train_reward_model

    settings = {"data": str(paths["train"]), "model": args.model, "lr": LR, "batch_size": BATCH_SIZE,
                "epochs": args.bt_epochs, "max_steps": args.max_steps, "max_length": args.max_length, "seed": args.seed}
    cfg = RewardTrainConfig(out=str(out), logging_steps=10, device="cpu", precision="fp32", **settings)
    return trained(out, {**settings, "quick": args.quick, "sha256": shas}, lambda: train_reward_model(cfg))


# ----------------------------------------------------------------------------- scoring


def encode_pairs(rm: Any, path: Path) -> tuple[list[Any], list[Any]]:
    """Each test pair's chosen and rejected input, encoded by ``rm``'s encoder as training reads pairs."""
    from rewardkit.data.dataset import load_examples

    cols = load_examples(path, kind="preference").dataset.select_columns(
        ["prompt", "chosen", "rejected", "conversational"])[:]
    return tuple([rm.encoder.encode(p, r, c) for p, r, c in zip(cols["prompt"], cols[side], cols["conversational"],
                                                                 strict=True)] for side in ("chosen", "rejected"))


def encode_rows(rm: Any, path: Path, names: Sequence[str]) -> tuple[list[Any], np.ndarray]:
    """The test attribute rows encoded by ``rm`` (read by ``data/attributes.py``) and their labels (N, K)."""
    from rewardkit.data.attributes import load_attributes

    data = load_attributes(path, attributes=list(names))
    if len(data.examples) != data.n_records:
        raise ValueError(f"{path}: {data.n_records - len(data.examples)} rows without any label; the benchmark "
                         "expects every row (verbosity is always present)")
    return [rm.encoder.encode(e.prompt, e.response, e.conversational) for e in data.examples], data.labels()


def armo_outputs(folder: Path, paths: dict[str, Path], names: Sequence[str], args: argparse.Namespace
                 ) -> dict[str, np.ndarray]:
    """ArmoRM on the test pairs (both sides) and rows from the frozen features: objectives, scalar, gate
    weights and coefficients, and the pooled features (for the linear BT control)."""
    import torch

    from rewardkit.models.features import FeatureNet, classifier_layer, extract_features
    from rewardkit.models.reward_model import load_reward_model
    from rewardkit.scoring import score_encoded_output

    rm = load_reward_model(folder)
    net = FeatureNet(classifier_layer(rm.model), rm.head).eval()
    chosen, rejected = encode_pairs(rm, paths["test"])
    rows, labels = encode_rows(rm, paths["objectives_test"], names)
    n, m = len(chosen), len(rows)
    log(f"armo: features of {2 * n} test pair inputs and {m} test rows")
    test = extract_features(rm.model, rm.head, rm.pad_token_id, chosen + rejected + rows)
    with torch.no_grad():
        out = net.run(test)
        gate = rm.head.gate(test.prompt.float())
        coeff = gate @ rm.head.transform.T
    k = min(args.check_items, n)
    scored = score_encoded_output(rm, chosen[:k])
    result = {"objectives": out.objectives.numpy(), "reward": out.reward.numpy(), "gate": gate.numpy(),
              "coeff": coeff.numpy(), "row_labels": labels, "n_pairs": np.array(n),
              "pooled_test": test.pooled.numpy(),
              "logit_scale": rm.head.gate.logit_scale.detach().numpy(),
              "check_reward": np.abs(scored.rewards - out.reward.numpy()[:k]),
              "check_objectives": np.abs(scored.objectives - out.objectives.numpy()[:k])}
    return result


def bt_outputs(folder: Path, paths: dict[str, Path], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The scalar BT's rewards on the test pairs (chosen, then rejected) and rows."""
    from rewardkit.models.reward_model import load_reward_model
    from rewardkit.scoring import score_encoded_output

    rm = load_reward_model(folder)
    chosen, rejected = encode_pairs(rm, paths["test"])
    rows, _ = encode_rows(rm, paths["objectives_test"], names)
    log(f"bt: scoring {2 * len(chosen)} test pair inputs and {len(rows)} test rows")
    return {"reward": score_encoded_output(rm, chosen + rejected + rows).rewards}


def cached(path: Path, stamp: dict[str, Any], compute: Any) -> dict[str, np.ndarray]:
    """``compute()`` (a dict of arrays) stored in ``path`` (npz), reused when ``stamp`` matches."""
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == stamp:
        log(f"reusing {path}")
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    result = compute()
    np.savez(path, **result)
    meta.write_text(json.dumps(stamp) + "\n")
    return result


def frozen_linear_bt(train_c: np.ndarray, train_r: np.ndarray, groups: Sequence[str], seed: int,
                     steps: int = 200) -> tuple[np.ndarray, dict[str, Any]]:
    """BT logistic regression ``w`` (d,) on pooled features: minimise mean −log σ(w·(φc − φr)) + l2·‖w‖²
    (L-BFGS), l2 from :data:`L2_GRID` by accuracy on a fifth of the groups (families), then refit on all."""
    import torch

    diff = torch.from_numpy(train_c - train_r).double()
    uniq = sorted(set(groups))
    val_groups = set(np.random.default_rng(seed).permutation(uniq)[: max(1, len(uniq) // 5)].tolist())
    val = torch.tensor([g in val_groups for g in groups])

    def fit(x: torch.Tensor, l2: float) -> torch.Tensor:
        w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.softplus(-(x @ w)).mean() + l2 * (w**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return w.detach()

    val_acc = {}
    for l2 in L2_GRID:
        w = fit(diff[~val], l2)
        val_acc[l2] = float(((diff[val] @ w) > 0).double().mean()) if bool(val.any()) else float("nan")
    best = max(L2_GRID, key=lambda a: (val_acc[a], -a)) if bool(val.any()) else L2_GRID[len(L2_GRID) // 2]
    return fit(diff, best).numpy(), {"l2": best, "val_accuracy": val_acc, "val_groups": len(val_groups)}


# ----------------------------------------------------------------------------- per-objective accuracy


def pair_labels(test_rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Labels (N, K) of each test pair's chosen and rejected response (NaN where the prompt lacks the kind)."""
    out = []
    for side in ("chosen", "rejected"):
        labels = np.full((len(test_rows), len(names)), np.nan)
        for i, r in enumerate(test_rows):
            text = "".join(m["content"] for m in r[side]) if isinstance(r[side], list) else r[side]
            found = kind_labels(r["constraints"], text)
            labels[i] = [found.get(n, np.nan) for n in names]
        out.append(labels)
    return out[0], out[1]


def accuracy(values: np.ndarray, seed: int) -> dict[str, float]:
    from rewardkit.stats import bootstrap_mean

    return bootstrap_mean(values, seed=seed).to_dict()


def per_objective(names: Sequence[str], pair_c: np.ndarray, pair_r: np.ndarray, row_labels: np.ndarray,
                  row_groups: Sequence[str], armo: dict[str, np.ndarray], scalars: dict[str, np.ndarray],
                  seed: int) -> dict[str, Any]:
    """For each objective: ordering accuracy of ArmoRM's objective output and of each scalar (``scalars``:
    name -> rewards of [test chosen, test rejected, test rows]) on test pairs and on row pairs where the
    label differs, and the objective's correlation with its label on the labelled rows."""
    from rewardkit.models.attribute_fit import spearman

    n = pair_c.shape[0]
    obj = armo["objectives"]
    out: dict[str, Any] = {}
    for k, name in enumerate(names):
        label_diff = pair_c[:, k] - pair_r[:, k]
        i, j = row_pairs(row_groups, row_labels[:, k])
        row_diff = row_labels[i, k] - row_labels[j, k]
        entry: dict[str, Any] = {
            "pairs_decided": int(order_correct(label_diff, label_diff).size),
            "pairs": {"objective": accuracy(order_correct(label_diff, obj[:n, k] - obj[n:2 * n, k]), seed)},
            "row_pairs_decided": int(i.size),
            "rows": {"objective": accuracy(order_correct(row_diff, obj[2 * n + i, k] - obj[2 * n + j, k]), seed)},
        }
        for sname, s in scalars.items():
            entry["pairs"][sname] = accuracy(order_correct(label_diff, s[:n] - s[n:2 * n]), seed)
            entry["rows"][sname] = accuracy(order_correct(row_diff, s[2 * n + i] - s[2 * n + j]), seed)
        labelled = ~np.isnan(row_labels[:, k])
        entry["rows_labelled"] = int(labelled.sum())
        entry["corr_pearson"] = pearson(obj[2 * n:, k][labelled], row_labels[labelled, k])
        entry["corr_spearman"] = (spearman(obj[2 * n:, k][labelled], row_labels[labelled, k])
                                  if labelled.sum() >= 2 else float("nan"))
        out[name] = entry
    return out


# ----------------------------------------------------------------------------- main


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    import rewardkit
    from rewardkit.stats import bootstrap_mean, pairwise_correct

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "multi_objective", "rewardkit_version": rewardkit.__version__,
                              "load_avg_at_start": list(os.getloadavg())}
    paths, shas = pin_data(args.data_dir, workdir)
    if args.quick:
        paths = quick_slice(paths, workdir, args)
    names, counts = objective_names(paths["objectives_train"])
    test_rows = read_rows(paths["test"])
    report["data"] = {"source": str(args.data_dir) if args.data_dir else "shipped ifeval-lite set", "sha256": shas,
                      "rows": {k: len(read_rows(p)) for k, p in paths.items()},
                      "objectives": names, "labelled_train_rows_per_kind": counts,
                      "kinds_not_fitted": [k for k, c in counts.items() if c < MIN_LABELS]}
    report["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    armo_meta = train_armo(paths, names, workdir / "armo", args, shas)
    timings["armo_train"] = time.perf_counter() - t0
    bt_meta: dict[str, Any] | None = None
    if not args.skip_bt:
        t0 = time.perf_counter()
        bt_meta = train_bt(paths, workdir / "bt", args, shas)
        timings["bt_train"] = time.perf_counter() - t0

    def stamp(model: str) -> dict[str, Any]:
        return {"quick": args.quick, "names": names, "sha256": shas,
                "trained_at": (workdir / model / "model.safetensors").stat().st_mtime}

    t0 = time.perf_counter()
    armo = cached(workdir / "armo_outputs.npz", stamp("armo"), lambda: armo_outputs(workdir / "armo", paths, names, args))
    scalars = {"armo_scalar": armo["reward"]}
    if bt_meta is not None:
        scalars["bt"] = cached(workdir / "bt_outputs.npz", stamp("bt"),
                               lambda: bt_outputs(workdir / "bt", paths, names))["reward"]
    timings["scoring"] = time.perf_counter() - t0
    n = int(armo["n_pairs"])
    if len(test_rows) != n:
        raise ValueError(f"{paths['test']}: {len(test_rows)} rows but {n} pairs read")

    t0 = time.perf_counter()
    with np.load(workdir / "armo.pairs.npz") as z:
        train_c, train_r = z["chosen"], z["rejected"]
    train_groups = [r["family_id"] for r in read_rows(paths["train"])]
    w, linear_fit = frozen_linear_bt(train_c, train_r, train_groups, args.seed)
    linear = armo["pooled_test"] @ w
    timings["frozen_linear_bt"] = time.perf_counter() - t0

    scalars["frozen_linear_bt"] = linear
    correct = {name: pairwise_correct(s[:n], s[n:2 * n]) for name, s in scalars.items()}
    report["pairwise_accuracy"] = {name: bootstrap_mean(c, seed=args.seed).to_dict() for name, c in correct.items()}
    for other in ("bt", "frozen_linear_bt"):
        if other in correct:  # paired: the same resampled pairs for both
            report[f"armo_minus_{other}"] = bootstrap_mean(correct["armo_scalar"] - correct[other],
                                                           seed=args.seed).to_dict()
    pair_c, pair_r = pair_labels(test_rows, names)
    row_groups = [r["prompt_id"] for r in read_rows(paths["objectives_test"])]
    report["per_objective"] = per_objective(names, pair_c, pair_r, armo["row_labels"], row_groups, armo, scalars,
                                            args.seed)
    by_contrast: dict[str, list[int]] = {}
    for i, r in enumerate(test_rows):
        by_contrast.setdefault(str(r.get("contrast")), []).append(i)
    report["pairwise_accuracy_by_contrast"] = {
        c: {name: bootstrap_mean(v[idx], seed=args.seed).to_dict() for name, v in correct.items()}
        for c, idx in sorted(by_contrast.items())}
    report["gate"] = {"weights": gate_spread(armo["gate"][: 2 * n], names),
                      "coefficients": {nm: {"mean": float(armo["coeff"][: 2 * n, k].mean()),
                                            "std": float(armo["coeff"][: 2 * n, k].std())}
                                       for k, nm in enumerate(names)},
                      "logit_scale": float(armo["logit_scale"].reshape(-1)[0])}
    report["armo"] = {"ridge": armo_meta.get("armo", {}).get("ridge"),
                      "verbosity_penalties": armo_meta.get("armo", {}).get("verbosity_penalties"),
                      "reload_check": armo_meta.get("reload_check"), "training": armo_meta.get("training"),
                      "scorer_check": {"items": int(armo["check_reward"].size),
                                       "max_abs_diff_reward": float(armo["check_reward"].max(initial=0.0)),
                                       "max_abs_diff_objectives": float(armo["check_objectives"].max(initial=0.0))}}
    report["bt"] = "skipped (--skip-bt)" if bt_meta is None else {
        "training": bt_meta.get("training"),
        "config": {k: bt_meta.get("config", {}).get(k) for k in ("epochs", "max_steps", "batch_size", "lr")}}
    report["frozen_linear_bt"] = linear_fit
    report["seconds"] = timings
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # the work itself, whatever else ran on the cores
    report["load_avg_at_end"] = list(os.getloadavg())
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--model", default="minilm", help="backbone of both reward models")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="a set written by `rewardkit data synth` (default: the shipped ifeval-lite set)")
    p.add_argument("--gate-epochs", type=float, default=20.0, help="ArmoRM stage 2: passes over the train pairs")
    p.add_argument("--gate-batch", type=int, default=32, help="ArmoRM stage 2: pairs per step")
    p.add_argument("--gate-lr", type=float, default=1e-3, help="ArmoRM stage 2: learning rate")
    p.add_argument("--bt-epochs", type=float, default=2.0, help="scalar BT: passes over the train pairs (the quickstart's 2)")
    p.add_argument("--skip-bt", action="store_true",
                   help="leave out the fine-tuned scalar BT (ArmoRM vs the frozen linear BT only)")
    p.add_argument("--max-steps", type=int, default=-1, help="cap on both trainings' steps (smoke runs); -1: none")
    p.add_argument("--max-length", type=int, default=256, help="token limit of both models")
    p.add_argument("--check-items", type=int, default=32, help="test items scored by the saved ArmoRM folder too")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 steps each, the first --quick-rows pairs")
    p.add_argument("--quick-rows", type=int, default=32, help="--quick: train pairs kept (test: half; rows: 4x, 2x)")
    p.add_argument("--seed", type=int, default=42, help="training and bootstrap seed")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--workdir", type=Path, default=None, help="folder for data copies, models and scores (default: temp)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.quick and args.max_steps <= 0:
        args.max_steps = 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_json_main(run, parse_args(argv), prefix="rk-multi-objective-")


if __name__ == "__main__":
    raise SystemExit(main())
