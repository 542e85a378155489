"""``eval unlearn`` outputs: ``results.json`` and a self-contained ``report.html`` (inline CSS and PNGs).

The report has the headline cards (forget quality, model utility, perplexity), one table per split, the
worst-forgotten rows, and -- when the model folder holds ``logs/metrics.jsonl`` from ``rewardkit train
unlearn`` -- the curves of the periodic eval metrics over training steps.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from rewardkit.data.io import atomic_write_json, atomic_write_text
from rewardkit.eval.report import CSS, _plt, _png
from rewardkit.eval.unlearn import UnlearnEval

# What `rewardkit train unlearn` logs on its eval rows (split "eval"), in the order the curves show them.
CURVE_KEYS = (("forget_answer_prob", "retain_answer_prob"), ("forget_nll", "retain_nll"))
SPLIT_FIELDS = (("answer_prob", "answer probability P(a|q)^(1/|a|)"), ("rouge_l_recall", "ROUGE-L recall"),
                ("exact_match", "exact match"), ("truth_ratio_mean", "truth ratio R (mean)"),
                ("truth_ratio_score", "truth-ratio score (TOFU)"), ("n", "rows"),
                ("n_truth_ratio", "rows with perturbed answers"))


def read_eval_curves(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` of the :data:`CURVE_KEYS` on the ``"split": "eval"`` rows of a
    training run's ``logs/metrics.jsonl`` (empty when the file does not exist; unreadable lines skipped)."""
    p = Path(path)
    curves: dict[str, list[tuple[int, float]]] = {}
    if not p.is_file():
        return curves
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or row.get("split") != "eval" or "step" not in row:
            continue
        for key in (k for pair in CURVE_KEYS for k in pair):
            if isinstance(row.get(key), int | float):
                curves.setdefault(key, []).append((int(row["step"]), float(row[key])))
    return curves


def results_dict(result: UnlearnEval, *, model: str, forget: str, retain: str | None, general: str | None,
                 reference: str | None, command: list[str] | None = None) -> dict[str, Any]:
    """What ``results.json`` holds: the inputs, the headline metrics, the split tables, per-row values."""
    d = _clean(result.to_dict())
    headline = {"forget_quality": None if result.forget_quality is None else result.forget_quality.p_value,
                "model_utility": result.model_utility, "general_perplexity": result.general_perplexity,
                "forget_answer_prob": result.forget.answer_prob, "forget_rouge_l_recall": result.forget.rouge_l_recall,
                "forget_truth_ratio_score": result.forget.truth_ratio_score}
    inputs = {"model": model, "forget": forget, "retain": retain, "general": general, "reference_model": reference}
    return {"inputs": inputs, "metrics": _clean(headline), "splits": {"forget": d["forget"], "retain": d["retain"]},
            "forget_quality": d["forget_quality"], "settings": d["settings"], "rows": d["rows"], "command": command}


def _clean(x: Any) -> Any:
    """NaN -> None, so results.json is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def write_results(results: dict[str, Any], out: Path) -> Path:
    atomic_write_json(out / "results.json", results)
    return out / "results.json"


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return str(x) if isinstance(x, int) else f"{x:.4g}"


def _split_table(results: dict[str, Any]) -> str:
    splits = {name: m for name, m in results["splits"].items() if m is not None}
    head = "".join(f"<th>{s}</th>" for s in splits)
    rows = "".join(f"<tr><td>{label}</td>" + "".join(f"<td>{_fmt(m[key])}</td>" for m in splits.values()) + "</tr>"
                   for key, label in SPLIT_FIELDS)
    return f"<table><tr><th>metric</th>{head}</tr>{rows}</table>"


def _cards(results: dict[str, Any]) -> str:
    m = results["metrics"]
    cards = [("forget quality (KS p-value)", m["forget_quality"], "needs --reference-retain-model"),
             ("model utility", m["model_utility"], "needs --retain"),
             ("perplexity (general text)", m["general_perplexity"], "needs --general")]
    return "<div class='cards'>" + "".join(
        f"<div class='card'><div>{name}</div><div class='big'>{_fmt(v)}</div>"
        f"<div class='muted'>{'' if v is not None else missing}</div></div>" for name, v, missing in cards) + "</div>"


def _rows_table(results: dict[str, Any], limit: int = 10) -> str:
    """The forget rows the model still knows best (highest answer probability first)."""
    rows = sorted((r for r in results["rows"] if r["split"] == "forget"),
                  key=lambda r: -(r["answer_prob"] if r["answer_prob"] is not None else -1))[:limit]
    body = "".join(f"<tr><td>{html.escape(str(r['id']))}</td><td>{_fmt(r['answer_prob'])}</td>"
                   f"<td>{_fmt(r['truth_ratio'])}</td><td>{_fmt(r['rouge_l_recall'])}</td>"
                   f"<td style='text-align:left'>{html.escape(r['generated'][:160])}</td></tr>" for r in rows)
    return ("<table><tr><th>id</th><th>answer prob</th><th>truth ratio</th><th>ROUGE-L recall</th>"
            f"<th>greedy answer</th></tr>{body}</table>")


def fig_curves(curves: dict[str, list[tuple[int, float]]]) -> str:
    """Answer probabilities and NLLs over training steps, forget vs retain (one PNG, two panels)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(CURVE_KEYS), figsize=(10, 3.4))
    for ax, keys, title in zip(axes, CURVE_KEYS, ("answer probability", "NLL per answer token"), strict=True):
        ax.set_title(title, fontsize=10)
        for key, color in zip(keys, ("#d62728", "#1f77b4"), strict=True):
            if key in curves:
                steps, values = zip(*curves[key], strict=True)
                ax.plot(steps, values, marker="o", ms=3, color=color, label=key)
        ax.set_xlabel("training step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _png(fig)


def render_html(results: dict[str, Any], curves: dict[str, list[tuple[int, float]]]) -> str:
    curve_html = fig_curves(curves) if curves else ("<p class='muted'>no training curves: the model folder has "
                                                    "no logs/metrics.jsonl with eval rows</p>")
    settings = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in {**results["inputs"], **results["settings"]}.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>rewardkit eval unlearn</title>"
            f"<style>{CSS}</style></head><body><h1>Unlearning evaluation</h1>"
            f"<p class='muted'>{html.escape(str(results['inputs']['model']))}</p>{_cards(results)}"
            f"<h2>Forget and retain sets</h2>{_split_table(results)}"
            "<p class='muted'>Truth ratio R = mean over wrong answers of P(ã|q)^(1/|ã|) / P(â|q)^(1/|â|); forget "
            "score mean(min(R, 1/R)), retain score mean(max(0, 1 − R)) (TOFU). Model utility: harmonic mean of "
            "the retain answer probability, ROUGE-L recall and truth-ratio score.</p>"
            f"<h2>Training curves</h2>{curve_html}"
            f"<h2>Forget rows the model still knows best</h2>{_rows_table(results)}"
            f"<h2>Settings</h2><table>{settings}</table></body></html>")


def write_report(results: dict[str, Any], curves: dict[str, list[tuple[int, float]]], out: Path) -> Path:
    atomic_write_text(out / "report.html", render_html(results, curves))
    return out / "report.html"
