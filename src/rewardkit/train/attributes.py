"""``rewardkit train rm`` on attribute data: ArmoRM (``--head multi``) and URM / URME (``--head gaussian``).

Both keep the backbone frozen and read its features once (:mod:`rewardkit.models.features`):

- **ArmoRM** (METHODS §2). Stage 1: one ridge per objective on the pooled features, closed form, the penalty
  chosen on a validation split, NaN labels skipped per objective; the K × d weights become the model's
  classification layer, so plain transformers returns the K objectives. Verbosity debiasing: penalties by
  the Spearman rule on a reference set's objectives (``--reference-data``, default ``--pairs``, else the
  attribute data) give the transform T. Stage 2 (with ``--pairs``): the gating network on the prompt-only
  position, softmax(z / T) · logit_scale, trained with the configured pairwise loss (BT) through the one
  loop, *with T applied* -- the scalar trained is the scalar served (ArmoRM's script fits the gate on
  untransformed rewards and applies T only at inference; METHODS §2's caveat).
- **URM** (METHODS §5): the objective layer (means; started at stage 1's ridge solution, ``urm.init``) and
  the log-std layer trained with a registered attribute loss (``urm.loss``: Gaussian NLL) through the one loop; with ``--pairs`` the gating network
  is trained at the same time on a second stream, with the BT loss on the gated means (detached, so the
  pairs train the gate only). ``--ensemble K`` trains K members (seeds seed..seed+K−1: different data orders,
  and each member's ridge start fitted on its own bootstrap sample of the rows) into ``OUT/members/i`` and writes the ensemble's ``rewardkit.json``.

After saving, the folder is loaded back and its scalar compared with training's on a few items; the
largest difference is recorded as ``reload_check`` in ``rewardkit.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit import __version__
from rewardkit.data.attributes import AttributeData, load_attributes
from rewardkit.data.chat import Encoded
from rewardkit.data.dataset import load_examples
from rewardkit.errors import OptionError
from rewardkit.losses import LOSSES, AttributeTargets, LossOutput, PairRewards
from rewardkit.models.attribute_fit import debias_transform, fit_objectives, verbosity_penalties
from rewardkit.models.devices import resolve_device
from rewardkit.models.ensemble import MEMBERS_DIR, write_ensemble
from rewardkit.models.features import FeatureNet, Features, classifier_layer, extract_features
from rewardkit.models.heads import HeadConfig, HeadOutput, build_head
from rewardkit.models.reward_model import METADATA_FILE, RewardModel, build_reward_model, save_reward_model
from rewardkit.scoring import score_encoded_output
from rewardkit.stats import pairwise_summary
from rewardkit.train.config import RewardTrainConfig
from rewardkit.train.job import Job, TrainResult, run_job
from rewardkit.train.reward import weighted_sums

CHECK_ITEMS = 16


@dataclass(frozen=True)
class PairFeatures:
    """Features of preference pairs: ``chosen`` and ``rejected`` (N each), ``lengths`` (N,) the longer side's tokens."""

    chosen: Features
    rejected: Features
    lengths: list[int]


@dataclass
class Prepared:
    """The frozen model and everything read from the data, shared by all stages and members."""

    rm: RewardModel
    data: AttributeData
    encoded: list[Encoded]
    features: Features
    pairs: PairFeatures | None
    eval_pairs: PairFeatures | None


def train_attribute_model(cfg: RewardTrainConfig) -> TrainResult:
    """Train an ArmoRM (multi head) or URM (gaussian head, optionally an ensemble) model on ``cfg.data``."""
    prep = prepare(cfg)
    if prep.rm.head.cfg.kind == "multi":
        return train_armo(cfg, prep)
    return train_urm(cfg, prep)


def attribute_head(cfg: RewardTrainConfig, names: Sequence[str]) -> HeadConfig:
    """The head to train: ``cfg.head`` with the data's objectives, gated when pairs are given."""
    h = cfg.head
    if h.kind not in ("multi", "gaussian"):
        raise OptionError("attribute data trains a multi-objective head: pass --head multi (ArmoRM) or "
                          "--head gaussian (URM)")
    if h.objectives != ["reward"] and list(h.objectives) != list(names):
        raise OptionError(f"head.objectives {h.objectives} differ from the data's attributes {list(names)}; "
                          "name them with --attributes")
    if h.gating and not cfg.pairs:
        raise OptionError("head.gating on attribute data needs --pairs (preference pairs that train the gate)")
    if cfg.ensemble > 1 and h.kind != "gaussian":
        raise OptionError("--ensemble needs --head gaussian (URME)")
    if cfg.lora.r:
        raise OptionError("lora.r: attribute data trains heads on the frozen backbone; LoRA does not apply")
    return HeadConfig.from_dict({**h.to_dict(), "objectives": list(names), "gating": bool(cfg.pairs)})


def prepare(cfg: RewardTrainConfig) -> Prepared:
    """Read and validate the data, build the frozen model, read the features once."""
    names = [n.strip() for n in cfg.attributes.split(",") if n.strip()] if cfg.attributes else None
    data = load_attributes(cfg.data, attributes=names, skip_invalid=cfg.skip_invalid)
    torch.manual_seed(cfg.seed)
    rm = build_reward_model(cfg.model, max_length=cfg.max_length, head=attribute_head(cfg, data.names))
    rm.model.to(resolve_device(cfg.device)).eval().requires_grad_(False)
    encoded = [rm.encoder.encode(e.prompt, e.response, e.conversational) for e in data.examples]
    features = extract_features(rm.model, rm.head, rm.pad_token_id, encoded, max_tokens=cfg.eval_batch_tokens)
    pairs = pair_features(cfg.pairs, rm, cfg) if cfg.pairs else None
    eval_pairs = pair_features(cfg.eval_data, rm, cfg) if cfg.eval_data else None
    return Prepared(rm, data, encoded, features, pairs, eval_pairs)


def pair_features(path: str, rm: RewardModel, cfg: RewardTrainConfig) -> PairFeatures:
    rows = load_examples(path, kind="preference", skip_invalid=cfg.skip_invalid).dataset
    cols = rows.select_columns(["prompt", "chosen", "rejected", "conversational"])[:]
    enc = [[rm.encoder.encode(p, r, c) for p, r, c in zip(cols["prompt"], cols[side], cols["conversational"],
                                                          strict=True)] for side in ("chosen", "rejected")]
    n = len(enc[0])
    both = extract_features(rm.model, rm.head, rm.pad_token_id, enc[0] + enc[1], max_tokens=cfg.eval_batch_tokens)
    lengths = [max(len(a.input_ids), len(b.input_ids)) for a, b in zip(enc[0], enc[1], strict=True)]
    return PairFeatures(both.select(slice(0, n)), both.select(slice(n, 2 * n)), lengths)


def _forward(model: Any, feats: Features, index: Sequence[int], *, detach_objectives: bool = False) -> HeadOutput:
    """The (possibly wrapped) :class:`FeatureNet` on rows ``index`` of ``feats``."""
    device = next(model.parameters()).device
    f = feats.select(list(index))
    return model(f.pooled.to(device), f.hidden.to(device), f.prompt.to(device), detach_objectives=detach_objectives)


def _pair_loss(model: Any, pairs: PairFeatures, index: Sequence[int], cfg: RewardTrainConfig, *,
               detach_objectives: bool) -> LossOutput:
    chosen = _forward(model, pairs.chosen, index, detach_objectives=detach_objectives).reward.float()
    rejected = _forward(model, pairs.rejected, index, detach_objectives=detach_objectives).reward.float()
    return cfg.loss.spec(PairRewards(chosen, rejected), cfg.loss.options)


def _evaluate(model: Any, pairs: PairFeatures) -> dict[str, float]:
    """Pairwise accuracy (95% interval) and margin of the trained scalar on held-out pairs' features."""
    with torch.no_grad():
        idx = list(range(len(pairs.lengths)))
        chosen = _forward(model, pairs.chosen, idx).reward.float().cpu().numpy()
        rejected = _forward(model, pairs.rejected, idx).reward.float().cpu().numpy()
    return pairwise_summary(chosen, rejected)


# ----------------------------------------------------------------------------- ArmoRM


def train_armo(cfg: RewardTrainConfig, prep: Prepared) -> TrainResult:
    """Stage 1 (ridge), debiasing, stage 2 (gating, through the loop when pairs are given), save."""
    rm, data = prep.rm, prep.data
    fits = fit_objectives(prep.features.pooled.double().numpy(), data.labels(), alphas=cfg.armo.ridge_alphas,
                          val_fraction=cfg.armo.val_fraction, seed=cfg.armo.split_seed, names=data.names)
    weights = np.stack([f.weights for f in fits])  # (K, d)
    layer = classifier_layer(rm.model)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weights).to(layer.weight))
        if layer.bias is not None:
            layer.bias.zero_()
    summary: dict[str, Any] = {"ridge": {n: {"alpha": f.alpha, "val_mse": f.val_mse.get(f.alpha), "n_train": f.n_train,
                                             "n_val": f.n_val} for n, f in zip(data.names, fits, strict=True)}}
    summary["verbosity_penalties"] = debias(cfg, prep, weights)
    net = FeatureNet(layer, rm.head)
    net.classifier.requires_grad_(False)
    if prep.pairs is None:  # no gate to train: nothing goes through the loop
        out = Path(cfg.out)
        metadata = _plain_metadata(cfg, prep, "armo")
        if prep.eval_pairs is not None:
            metadata["metrics"] = {"eval": _evaluate(net.eval(), prep.eval_pairs)}
        return TrainResult(out, save_checked(rm, net, out, {**metadata, "armo": summary}, prep))
    job = gating_job(cfg, prep, net, summary)
    return run_job(cfg, lambda _cfg, _acc: job)


def debias(cfg: RewardTrainConfig, prep: Prepared, weights: np.ndarray) -> dict[str, float] | None:
    """Set the head's transform from the verbosity penalties, computed on the reference set's objectives
    (None when there is no verbosity objective)."""
    names = list(prep.data.names)
    if not cfg.armo.verbosity or cfg.armo.verbosity not in names:
        return None
    reference = pair_features(cfg.reference_data, prep.rm, cfg) if cfg.reference_data else prep.pairs
    if reference is not None:  # chosen and rejected pooled, as ArmoRM's reference set
        pooled = torch.cat([reference.chosen.pooled, reference.rejected.pooled])
    else:
        pooled = prep.features.pooled
    objectives = pooled.double().numpy() @ weights.T  # (N, K)
    verb = names.index(cfg.armo.verbosity)
    penalties = verbosity_penalties(objectives, verb, threshold=cfg.armo.corr_threshold)
    transform = debias_transform(penalties, verb)
    head = prep.rm.head
    head.cfg.transform = transform.tolist()
    with torch.no_grad():
        head.transform.copy_(torch.from_numpy(transform).to(head.transform))
    return dict(zip(names, penalties.tolist(), strict=True))


def gating_job(cfg: RewardTrainConfig, prep: Prepared, net: FeatureNet, summary: dict[str, Any]) -> Job:
    """Stage 2 as a loop job: the gate (the only trainable part) on the pairs stream, the configured pairwise loss."""
    assert prep.pairs is not None
    pairs = prep.pairs

    def make_step_loss(model: Any) -> Callable[..., Any]:
        def step_loss(micro: dict[str, Any], scales: dict[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            mb = micro["pairs"]
            out = _pair_loss(model, pairs, mb.indices, cfg, detach_objectives=True)
            w = torch.tensor(mb.weights, dtype=torch.float32, device=out.per_example.device)
            return (out.per_example * w).sum() * scales["pairs"], weighted_sums(out, w)
        return step_loss

    def save(trained: Any, out: Path, metadata: dict[str, Any]) -> None:
        save_checked(prep.rm, trained, out, {**metadata, "data": prep.data.summary(), "armo": summary}, prep)

    evaluate = (lambda model: lambda: _evaluate(model, prep.eval_pairs)) if prep.eval_pairs is not None else None
    return Job("armo", net, {"pairs": pairs.lengths}, make_step_loss, evaluate, save, {}, unit="pairs")


# ----------------------------------------------------------------------------- URM / URME


def train_urm(cfg: RewardTrainConfig, prep: Prepared) -> TrainResult:
    """K members (K = ``cfg.ensemble``), each a loop job; one folder, or OUT/members/i and the ensemble file."""
    if cfg.ensemble == 1:
        return run_job(cfg, lambda c, _acc: urm_job(c, prep, bootstrap=False))
    out = Path(cfg.out)
    members, results = [], []
    for i in range(cfg.ensemble):
        member = dataclasses.replace(cfg, out=str(out / MEMBERS_DIR / str(i)), seed=cfg.seed + i)
        results.append(run_job(member, lambda c, _acc: urm_job(c, prep, bootstrap=True)))
        members.append(f"{MEMBERS_DIR}/{i}")
    metadata = {**_plain_metadata(cfg, prep, "urme"),
                "members_metrics": [r.metadata.get("metrics", {}) for r in results]}
    write_ensemble(out, members, metadata)
    _record_check(out, _ensemble_check(cfg, prep, out))
    return TrainResult(out, json.loads((out / METADATA_FILE).read_text(encoding="utf-8")))


def initial_means(cfg: RewardTrainConfig, prep: Prepared, *, bootstrap: bool) -> torch.Tensor | None:
    """The objective layer's start (K, d): stage 1's ridge, on a bootstrap sample of the rows (seeded by the
    member's seed) for ensemble members; None for a random start."""
    if cfg.urm.init != "ridge":
        return None
    rows = np.arange(len(prep.features))
    if bootstrap:
        rows = np.random.default_rng(cfg.seed).integers(0, len(rows), len(rows))
    labels = prep.data.labels()[rows]
    keep = [k for k in range(labels.shape[1]) if (~np.isnan(labels[:, k])).any()]
    if len(keep) < labels.shape[1]:  # a bootstrap sample without any label of an objective: use every row
        rows, labels = np.arange(len(prep.features)), prep.data.labels()
    fits = fit_objectives(prep.features.pooled.double().numpy()[rows], labels, alphas=cfg.armo.ridge_alphas,
                          val_fraction=cfg.armo.val_fraction, seed=cfg.armo.split_seed, names=prep.data.names)
    return torch.from_numpy(np.stack([f.weights for f in fits])).float()


def urm_job(cfg: RewardTrainConfig, prep: Prepared, *, bootstrap: bool) -> Job:
    """One URM member (built after the loop seeds the run): a fresh objective layer (ridge or random start),
    log-std layer and gate."""
    rm = prep.rm
    layer = classifier_layer(rm.model)
    head = build_head(HeadConfig.from_dict(rm.head.cfg.to_dict()), rm.model.config.hidden_size)
    net = FeatureNet(layer, head)
    start = initial_means(cfg, prep, bootstrap=bootstrap)
    with torch.no_grad():
        if start is None:
            torch.nn.init.normal_(net.classifier.weight, std=cfg.urm.init_std)
        else:
            net.classifier.weight.copy_(start)
        if net.classifier.bias is not None:
            net.classifier.bias.zero_()
    labels = torch.from_numpy(prep.data.labels()).float()
    attribute_loss = LOSSES.get(cfg.urm.loss)
    streams = {"examples": [len(e.input_ids) for e in prep.encoded]}
    if prep.pairs is not None:
        streams["pairs"] = prep.pairs.lengths

    def make_step_loss(model: Any) -> Callable[..., Any]:
        def step_loss(micro: dict[str, Any], scales: dict[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            mb = micro["examples"]
            out = _forward(model, prep.features, mb.indices)
            target = labels[mb.indices].to(out.reward.device)
            lo = attribute_loss(AttributeTargets(out.objectives, target, out.log_std))
            w = torch.tensor(mb.weights, dtype=torch.float32, device=target.device)
            loss, sums = (lo.per_example * w).sum() * scales["examples"], weighted_sums(lo, w)
            if prep.pairs is not None:  # the gate, on the pairs stream (metrics per example of the first stream)
                pm = micro["pairs"]
                po = _pair_loss(model, prep.pairs, pm.indices, cfg, detach_objectives=True)
                pw = torch.tensor(pm.weights, dtype=torch.float32, device=target.device)
                loss = loss + (po.per_example * pw).sum() * scales["pairs"]
                sums.update({f"pairs_{k}": v for k, v in weighted_sums(po, pw).items() if k != "examples"})
            return loss, sums
        return step_loss

    def save(trained: Any, out: Path, metadata: dict[str, Any]) -> None:
        save_checked(rm, trained, out, {**metadata, "data": prep.data.summary()}, prep)

    evaluate = (lambda model: lambda: _evaluate(model, prep.eval_pairs)) if prep.eval_pairs is not None else None
    return Job("urm", net, streams, make_step_loss, evaluate, save, {}, unit="examples")


# ----------------------------------------------------------------------------- saving and the reload check


def save_checked(rm: RewardModel, trained: FeatureNet, out: Path, metadata: dict[str, Any], prep: Prepared
                 ) -> dict[str, Any]:
    """Put the trained layer and head into ``rm``, save it, reload it and record how far the reloaded
    scalar is from training's on the first items (``reload_check``); returns the saved metadata."""
    trained.eval()
    trained.write_back(rm.model)
    rm.net.head = trained.head
    save_reward_model(rm, out, metadata)
    n = min(CHECK_ITEMS, len(prep.encoded))
    with torch.no_grad():
        expected = trained.run(prep.features, slice(0, n)).reward.float().cpu().numpy()
    return _record_check(out, _check(out, prep.encoded[:n], expected))


def _check(out: Path, encoded: Sequence[Encoded], expected: np.ndarray) -> dict[str, float]:
    from rewardkit.models.reward_model import load_reward_model

    got = score_encoded_output(load_reward_model(out), encoded).rewards
    return {"items": float(len(encoded)), "max_abs_diff": float(np.max(np.abs(got - expected))) if len(got) else 0.0}


def _ensemble_check(cfg: RewardTrainConfig, prep: Prepared, out: Path) -> dict[str, float]:
    from rewardkit.models.reward_model import load_reward_model

    n = min(CHECK_ITEMS, len(prep.encoded))
    member_rewards = []
    for i in range(cfg.ensemble):
        member = load_reward_model(out / MEMBERS_DIR / str(i))
        net = FeatureNet(classifier_layer(member.model), member.head).eval()
        with torch.no_grad():
            member_rewards.append(net.run(prep.features, slice(0, n)).reward.float().cpu().numpy())
    return _check(out, prep.encoded[:n], np.mean(member_rewards, axis=0))


def _record_check(out: Path, check: dict[str, float]) -> dict[str, Any]:
    from rewardkit.models.reward_model import write_json_atomic

    meta = json.loads((out / METADATA_FILE).read_text(encoding="utf-8"))
    meta["reload_check"] = check
    write_json_atomic(out / METADATA_FILE, meta)
    return meta


def _plain_metadata(cfg: RewardTrainConfig, prep: Prepared, job: str) -> dict[str, Any]:
    return {"rewardkit_version": __version__, "job": job, "backbone": cfg.model, "config": cfg.to_dict(),
            "data": prep.data.summary()}
