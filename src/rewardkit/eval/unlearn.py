"""Unlearning evaluation: TOFU's metrics on a forget set and a retain set, as small pure functions, and
:func:`evaluate_unlearning`, which runs a causal LM over the rows to compute them.

Definitions (TOFU, Maini et al. 2024; code ``locuslab/tofu`` ``aggregate_eval_stat.py`` and
``evaluate_util.py`` at 8c49eee, and open-unlearning ``src/evals/metrics/memorization.py``):

- **answer probability** ``P(a|q)^(1/|a|) = exp(Σ_t log π(a_t|q, a_<t) / |a|)`` per row, averaged over rows
  (TOFU: ``exp(-avg_gt_loss)``, then the mean).
- **ROUGE-L recall** of the greedy answer against the true answer (``rouge_score``'s ``RougeScorer(["rougeL"],
  use_stemmer=True).score(target=answer, prediction=generated).recall``, as TOFU's ``eval_rouge_recall``).
- **exact match**: the greedy answer equals the true answer after :func:`normalize_answer`.
- **truth ratio** per row ``R = mean_j P(ã_j|q)^(1/|ã_j|) / P(â|q)^(1/|â|)`` (ã: perturbed = wrong answers,
  â: the paraphrased answer, else the answer). TOFU's code and open-unlearning average the perturbed
  answers *in loss space* (``average_perturb_loss.mean(-1)``), i.e. a geometric mean of the normalised
  probabilities: that is the default here (``perturbed_mean="geometric"``); the paper's arithmetic mean
  is ``perturbed_mean="arithmetic"``. Split scores as TOFU's code: forget ``mean(min(R, 1/R))`` (a model
  that cannot tell the true from the wrong answers scores 1), retain ``mean(max(0, 1 - R))`` (TOFU writes
  ``1 - 1/c`` with ``c = 1/R``; open-unlearning's ``true_better``).
- **model utility**: the harmonic mean of the retain answer probability, retain ROUGE-L recall and retain
  truth-ratio score (TOFU takes the harmonic mean of these three on retain, real authors and world facts;
  we have the retain set only).
- **forget quality**: the p-value of ``scipy.stats.ks_2samp`` between the per-row forget-set truth ratios of
  this model and of a reference model never trained on the forget set (TOFU's ``get_forget_quality``; the
  KS test is unchanged when both samples are mapped by ``R -> 1/R``, so TOFU's ``c = 1/R`` gives the same
  p-value).
- **perplexity** of general text: ``exp(-Σ log π / Σ tokens)`` over all scored tokens of all texts.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch

from rewardkit.data.chat import PairEncoder, input_format_for
from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.models.causal_lm import response_mask_from_starts, right_pad, sequence_logps

PerturbedMean = Literal["geometric", "arithmetic"]


class UnlearnRowLike(Protocol):
    """What the evaluation reads of a ``rewardkit.data.unlearning.UnlearnRow``."""

    id: str
    answer: str
    prompt: Sequence[Message]
    paraphrased_answer: str | None
    perturbed_answers: list[str]


# ----------------------------------------------------------------------------------- pure metrics


def answer_probability(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """TOFU's length-normalised answer probability ``exp(sums / counts)`` (B,) float64 from summed answer
    log-probs ``sums`` (B,) and answer token counts ``counts`` (B,); a row with no token gives NaN."""
    sums, counts = np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.exp(sums / np.maximum(counts, 1)), np.nan)


def normalize_answer(text: str) -> str:
    """Lowercase, drop ASCII punctuation, collapse whitespace (what :func:`exact_match` compares)."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return re.sub(r"\s+", " ", text).strip()


def exact_match(prediction: str, reference: str) -> float:
    """1.0 if the normalised prediction equals the normalised reference, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def rouge_l_recall(prediction: str, reference: str) -> float:
    """ROUGE-L recall: LCS(reference tokens, prediction tokens) / len(reference tokens), with
    ``rouge_score``'s tokenizer and Porter stemmer (as TOFU: ``scorer.score(gt, gen)['rougeL'].recall``)."""
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].recall)


_SCORER: Any = None


def _rouge_scorer() -> Any:
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return _SCORER


def truth_ratio(paraphrased_prob: float, perturbed_probs: Sequence[float], *,
                perturbed_mean: PerturbedMean = "geometric") -> float:
    """TOFU's truth ratio of one row: ``mean_j P(ã_j|q)^(1/|ã_j|) / P(â|q)^(1/|â|)`` from the normalised
    probabilities of the paraphrased answer and of each perturbed answer. ``geometric`` (TOFU's code,
    open-unlearning) averages the perturbed ones as ``exp(mean log p)``; ``arithmetic`` (the paper) as
    ``mean p``. NaN when there is no perturbed answer."""
    p = np.asarray(perturbed_probs, dtype=np.float64)
    if p.size == 0:
        return math.nan
    if perturbed_mean == "geometric":
        wrong = float(np.exp(np.mean(np.log(p))))
    elif perturbed_mean == "arithmetic":
        wrong = float(np.mean(p))
    else:
        raise OptionError(f"perturbed_mean must be geometric or arithmetic, got {perturbed_mean!r}")
    return wrong / paraphrased_prob


def forget_truth_ratio_score(ratios: Sequence[float]) -> float:
    """Forget split: ``mean(min(R, 1/R))`` over rows (NaN rows left out); 1 = true and wrong answers equally
    likely (TOFU ``aggregate_eval_stat.py``; open-unlearning ``closer_to_1_better``)."""
    r = _finite(ratios)
    return float(np.mean(np.minimum(r, 1.0 / r))) if r.size else math.nan


def retain_truth_ratio_score(ratios: Sequence[float]) -> float:
    """Retain split: ``mean(max(0, 1 - R))`` over rows (NaN rows left out); 1 = wrong answers have no mass
    next to the true one (TOFU ``max(0, 1 - 1/c)`` with ``c = 1/R``; open-unlearning ``true_better``)."""
    r = _finite(ratios)
    return float(np.mean(np.maximum(0.0, 1.0 - r))) if r.size else math.nan


def _finite(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def harmonic_mean(values: Sequence[float]) -> float:
    """``n / Σ 1/v`` (TOFU's model utility uses ``scipy.stats.hmean``); 0 if any value is 0, NaN if any is
    NaN or negative."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v < 0):
        return math.nan
    return 0.0 if np.any(v == 0) else float(v.size / np.sum(1.0 / v))


@dataclass(frozen=True)
class KsResult:
    """Two-sample Kolmogorov-Smirnov test: ``p_value`` is TOFU's forget quality; ``n`` rows of each side."""

    p_value: float
    statistic: float
    n_model: int
    n_reference: int


def forget_quality(model_ratios: Sequence[float], reference_ratios: Sequence[float]) -> KsResult:
    """``scipy.stats.ks_2samp`` between the forget-set truth ratios (per row, NaN left out) of the evaluated
    model and of a reference model never trained on the forget set. High p-value = indistinguishable."""
    from scipy.stats import ks_2samp

    a, b = _finite(model_ratios), _finite(reference_ratios)
    if a.size == 0 or b.size == 0:
        raise OptionError("forget quality needs forget rows with perturbed answers (no truth ratio to compare)")
    res = ks_2samp(a, b)
    return KsResult(float(res.pvalue), float(res.statistic), int(a.size), int(b.size))


def perplexity(sums: np.ndarray, counts: np.ndarray) -> float:
    """``exp(-Σ sums / Σ counts)``: token-weighted perplexity of texts with summed log-probs ``sums`` (B,)
    and scored-token counts ``counts`` (B,)."""
    total = float(np.sum(counts))
    return math.exp(-float(np.sum(sums)) / total) if total > 0 else math.nan


# ----------------------------------------------------------------------------------- running a model


@dataclass(frozen=True)
class SplitMetrics:
    """One split's means over rows (``truth_ratio_mean``: raw mean R; ``truth_ratio_score``: TOFU's
    transform for that split); ``n_truth_ratio`` rows had perturbed answers."""

    n: int
    answer_prob: float
    rouge_l_recall: float
    exact_match: float
    truth_ratio_mean: float
    truth_ratio_score: float
    n_truth_ratio: int


@dataclass(frozen=True)
class UnlearnEval:
    """Everything :func:`evaluate_unlearning` measured. ``rows``: per-row values (id, split, answer_prob,
    truth_ratio, rouge_l_recall, exact_match, generated)."""

    forget: SplitMetrics
    retain: SplitMetrics | None
    model_utility: float | None
    forget_quality: KsResult | None
    general_perplexity: float | None
    settings: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_unlearning(
    model: Any, forget_rows: Sequence[UnlearnRowLike], retain_rows: Sequence[UnlearnRowLike] | None = None,
    general_texts: Sequence[str] | None = None, reference_model: Any | None = None, *, max_new_tokens: int = 32,
    batch_size: int = 16, max_length: int = 512, perturbed_mean: PerturbedMean = "geometric",
) -> UnlearnEval:
    """TOFU's metrics for ``model`` (a :class:`rewardkit.models.causal_lm.CausalLM`) on the forget rows, the
    retain rows (model utility) and ``general_texts`` (perplexity); with ``reference_model`` (a CausalLM
    never trained on the forget set) also the forget quality. Rows are scored ``batch_size`` at a time."""
    if not forget_rows:
        raise OptionError("no forget rows to evaluate")
    if batch_size < 1 or max_new_tokens < 1:
        raise OptionError("batch_size and max_new_tokens must be >= 1")
    forget, forget_rows_out = _evaluate_split(model, forget_rows, "forget", max_new_tokens, batch_size, max_length,
                                              perturbed_mean)
    retain, retain_rows_out = (None, [])
    if retain_rows:
        retain, retain_rows_out = _evaluate_split(model, retain_rows, "retain", max_new_tokens, batch_size,
                                                  max_length, perturbed_mean)
    utility = None if retain is None else harmonic_mean(
        [retain.answer_prob, retain.rouge_l_recall, retain.truth_ratio_score])
    quality = None
    if reference_model is not None:
        ref = truth_ratios(reference_model, forget_rows, batch_size=batch_size, max_length=max_length,
                           perturbed_mean=perturbed_mean)
        quality = forget_quality([r["truth_ratio"] for r in forget_rows_out], ref)
    ppl = text_perplexity(model, general_texts, batch_size=batch_size, max_length=max_length) if general_texts else None
    settings = {"max_new_tokens": max_new_tokens, "batch_size": batch_size, "max_length": max_length,
                "perturbed_mean": perturbed_mean, "decoding": "greedy"}
    return UnlearnEval(forget, retain, utility, quality, ppl, settings, forget_rows_out + retain_rows_out)


def _evaluate_split(model: Any, rows: Sequence[UnlearnRowLike], split: str, max_new_tokens: int, batch_size: int,
                    max_length: int, perturbed_mean: PerturbedMean) -> tuple[SplitMetrics, list[dict[str, Any]]]:
    probs = answer_probs(model, [(r.prompt, r.answer) for r in rows], batch_size=batch_size, max_length=max_length)
    ratios = truth_ratios(model, rows, batch_size=batch_size, max_length=max_length, perturbed_mean=perturbed_mean)
    generated = greedy_answers(model, [r.prompt for r in rows], max_new_tokens=max_new_tokens, batch_size=batch_size)
    out = [{"id": r.id, "split": split, "answer_prob": float(p), "truth_ratio": float(tr),
            "rouge_l_recall": rouge_l_recall(g, r.answer), "exact_match": exact_match(g, r.answer), "generated": g}
           for r, p, tr, g in zip(rows, probs, ratios, generated, strict=True)]
    score = forget_truth_ratio_score if split == "forget" else retain_truth_ratio_score
    finite = _finite(ratios)
    metrics = SplitMetrics(
        n=len(rows), answer_prob=float(np.nanmean(probs)),
        rouge_l_recall=float(np.mean([o["rouge_l_recall"] for o in out])),
        exact_match=float(np.mean([o["exact_match"] for o in out])),
        truth_ratio_mean=float(np.mean(finite)) if finite.size else math.nan,
        truth_ratio_score=score(ratios), n_truth_ratio=int(finite.size))
    return metrics, out


def answer_logps(model: Any, pairs: Sequence[tuple[Sequence[Message], str]], *, batch_size: int = 16,
                 max_length: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(sums (N,), counts (N,)): Σ log π over each answer's tokens given its prompt, the answer rendered as
    the assistant turn of the chat template (its end-of-turn tokens included), as training scores it."""
    tok = model.tokenizer
    encoder = PairEncoder(tok, input_format_for(tok, model.model.config.model_type), max_length)
    encoded = [encoder.encode(list(p), [{"role": "assistant", "content": a}], conversational=True) for p, a in pairs]
    return _score([e.input_ids for e in encoded], [e.response_start for e in encoded], model, batch_size)


def answer_probs(model: Any, pairs: Sequence[tuple[Sequence[Message], str]], *, batch_size: int = 16,
                 max_length: int = 512) -> np.ndarray:
    """(N,) TOFU answer probabilities :func:`answer_probability` of each (prompt, answer)."""
    return answer_probability(*answer_logps(model, pairs, batch_size=batch_size, max_length=max_length))


def truth_ratios(model: Any, rows: Sequence[UnlearnRowLike], *, batch_size: int = 16, max_length: int = 512,
                 perturbed_mean: PerturbedMean = "geometric") -> list[float]:
    """Per-row truth ratio (NaN for a row without perturbed answers); â = the paraphrased answer, else the
    answer itself."""
    pairs = [(r.prompt, text) for r in rows for text in [r.paraphrased_answer or r.answer, *r.perturbed_answers]]
    probs = answer_probs(model, pairs, batch_size=batch_size, max_length=max_length) if pairs else np.zeros(0)
    out: list[float] = []
    k = 0
    for r in rows:  # each row's paraphrased answer, then its perturbed ones
        n = 1 + len(r.perturbed_answers)
        out.append(truth_ratio(probs[k], probs[k + 1:k + n], perturbed_mean=perturbed_mean))
        k += n
    return out


def text_perplexity(model: Any, texts: Sequence[str], *, batch_size: int = 16, max_length: int = 512) -> float:
    """:func:`perplexity` of plain texts (tokenizer special tokens added; every token after the first scored;
    a text is cut at ``max_length`` tokens)."""
    ids = [list(model.tokenizer(t, add_special_tokens=True)["input_ids"])[:max_length] for t in texts]
    return perplexity(*_score(ids, [1] * len(ids), model, batch_size))


@torch.no_grad()
def _score(seqs: Sequence[Sequence[int]], starts: Sequence[int], model: Any, batch_size: int
           ) -> tuple[np.ndarray, np.ndarray]:
    sums, counts = [], []
    for lo in range(0, len(seqs), batch_size):
        ids, mask = right_pad(seqs[lo:lo + batch_size], model.pad_id, model.device)  # (B, T)
        scored = response_mask_from_starts(mask, starts[lo:lo + batch_size])  # (B, T)
        lp = sequence_logps(model.model, ids, mask, scored)
        sums.append(lp.sums.double().cpu().numpy())
        counts.append(lp.counts.cpu().numpy())
    return np.concatenate(sums), np.concatenate(counts)


def greedy_answers(model: Any, prompts: Sequence[Sequence[Message]], *, max_new_tokens: int = 32,
                   batch_size: int = 16) -> list[str]:
    """Greedy (temperature 0) answers to ``prompts`` with the chat template, ``batch_size`` prompts a batch."""
    from rewardkit.infer.sampler import SamplingConfig, policy_from_model, sample

    policy = policy_from_model(model.model, model.tokenizer, model.name)
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0)
    out: list[str] = []
    for lo in range(0, len(prompts), batch_size):
        out.extend(s[0].text.strip() for s in sample(policy, [list(p) for p in prompts[lo:lo + batch_size]], 1, cfg))
    return out
