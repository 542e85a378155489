"""``report.html``: one self-contained page (inline CSS and PNG images, no script, no network).

It shows the section table with 95% intervals next to the trivial baselines, per-subset bars with
intervals, a reliability diagram, chosen-vs-rejected score histograms and a length-bias plot; with
several models, side-by-side columns and a paired-bootstrap test of each difference. It also lists
the data notes and the exact settings. :func:`render_png` screenshots it in headless Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.eval.results import EvalResult, Metric

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{padding:3px 9px;border-bottom:1px solid #eee;
text-align:right} th{background:#f5f5f5} td:first-child,th:first-child{text-align:left}
tr.overall td{font-weight:bold;background:#fafaf0} tr.section td{font-weight:600} .muted{color:#777}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;padding:10px 14px}
.big{font-size:26px;font-weight:bold} img{max-width:100%;border:1px solid #eee;margin:6px 0}
code{background:#f4f4f4;padding:1px 4px;font-size:12px} .sig{color:#b00;font-weight:bold}
"""


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _ci(m: Metric | None) -> str:
    if m is None:
        return "–"
    return f"{_fmt(m.value)} <span class='muted'>[{_fmt(m.low)}, {_fmt(m.high)}]</span>"


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f"<img alt='figure' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _short(spec: str) -> str:
    return spec if len(spec) <= 40 else "…" + spec[-39:]


# ----------------------------------------------------------------------------- figures


def fig_metrics(result: EvalResult) -> str:
    """Horizontal bars per metric (sections, then subsets) and model, with 95% intervals and baselines."""
    plt = _plt()
    keys = [m.key for m in result.models[0].metrics if m.level in ("section", "subset")] or ["overall"]
    n, k = len(keys), len(result.models)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * n * max(1, k * 0.6)))
    height = 0.8 / k
    for j, model in enumerate(result.models):
        vals = [model.metric(key) for key in keys]
        y = np.arange(n) + (j - (k - 1) / 2) * height
        v = np.array([m.value if m else np.nan for m in vals])
        err = np.array([[m.value - m.low, m.high - m.value] if m else [0, 0] for m in vals]).T
        ax.barh(y, v, height=height * 0.9, xerr=np.nan_to_num(err), color=COLORS[j % len(COLORS)],
                alpha=0.85, label=_short(model.spec), error_kw={"elinewidth": 1, "capsize": 2})
    for name, marker in (("random", "|"), ("longer_wins", "4"), ("shorter_wins", "3")):
        base = [result.baselines[name].get(key, np.nan) for key in keys]
        ax.scatter(base, np.arange(n), marker=marker, s=120, color="black", label=name.replace("_", "-"), zorder=3)
    ax.set_yticks(np.arange(n), [key.partition("/")[2] or key for key in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (95% bootstrap interval)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def fig_reliability(result: EvalResult) -> str:
    """Reliability diagram of P(chosen ≻ rejected) = σ(Δ): accuracy against confidence per bin."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.4))
    ax.plot([0.5, 1], [0.5, 1], "--", color="gray", label="perfect calibration")
    for j, model in enumerate(result.models):
        bins = [b for b in model.calibration.bins if b.count]
        ax.plot([b.confidence for b in bins], [b.accuracy for b in bins], "-o", color=COLORS[j % len(COLORS)],
                label=f"{_short(model.spec)} (ECE {_fmt(model.calibration.ece)})")
        for b in bins:
            ax.annotate(str(b.count), (b.confidence, b.accuracy), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlim(0.48, 1.01)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("confidence σ(|Δ|) of the predicted winner")
    ax.set_ylabel("accuracy (ties wrong)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


def fig_histograms(result: EvalResult) -> str:
    """Score histograms of correct (chosen / best) vs incorrect responses, one panel per model."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    k = len(result.models)
    fig, axes = plt.subplots(1, k, figsize=(4.6 * k, 3.4), squeeze=False)
    for ax, model in zip(axes[0], result.models, strict=True):
        d = model.distribution
        edges = np.asarray(d.edges)
        ax.stairs(d.correct_hist, edges, fill=True, alpha=0.5, color="#2ca02c", label="correct (chosen)")
        ax.stairs(d.incorrect_hist, edges, fill=True, alpha=0.5, color="#d62728", label="incorrect (rejected)")
        ax.set_title(_short(model.spec), fontsize=9)
        ax.set_xlabel("score")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("responses")
    return _png(fig)


def fig_length(result: EvalResult, scored: Sequence[Any]) -> str:
    """Left: accuracy split by whether the correct response is longer; right: Δscore vs Δlength."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    splits = (("correct longer", "correct_longer"), ("correct shorter", "correct_shorter"), ("same length", "equal_length"))
    k = len(result.models)
    for j, model in enumerate(result.models):
        lb = model.length_bias.to_dict()
        vals = [lb[f"accuracy_{s}"] for _, s in splits]
        x = np.arange(3) + (j - (k - 1) / 2) * 0.8 / k
        left.bar(x, np.nan_to_num(vals), width=0.8 / k * 0.9, color=COLORS[j % len(COLORS)], label=_short(model.spec))
        for xi, s in zip(x, splits, strict=True):
            left.annotate(f"n={lb['n_' + s[1]]}", (xi, 0.02), fontsize=6, ha="center", rotation=90)
    left.set_xticks(np.arange(3), [s[0] for s in splits], fontsize=8)
    left.set_ylim(0, 1)
    left.set_ylabel("comparison accuracy")
    left.legend(fontsize=7)
    rng = np.random.default_rng(0)
    for j, sm in enumerate(scored):
        c = sm.comparisons
        pick = rng.permutation(len(c.margin))[:2000]
        scale = float(np.std(c.margin)) or 1.0  # scorers differ in scale: margins in units of their own s.d.
        right.scatter((c.correct_len - c.incorrect_len)[pick], c.margin[pick] / scale, s=6, alpha=0.4,
                      color=COLORS[j % len(COLORS)], label=_short(sm.spec))
    right.axhline(0, color="gray", lw=0.8)
    right.axvline(0, color="gray", lw=0.8)
    right.set_xscale("symlog", linthresh=10)
    right.set_xlabel("length(correct) − length(incorrect), characters")
    right.set_ylabel("score margin Δ / s.d.(Δ)")
    right.legend(fontsize=7)
    return _png(fig)


# ----------------------------------------------------------------------------- tables and page


def metrics_table(result: EvalResult) -> str:
    head = "".join(f"<th>{html.escape(_short(m.spec))}</th>" for m in result.models)
    rows = [f"<tr><th>metric</th>{head}<th>n</th><th>random</th><th>longer-wins</th><th>shorter-wins</th></tr>"]
    for m0 in result.models[0].metrics:
        cells = "".join(f"<td>{_ci(m.metric(m0.key))}</td>" for m in result.models)
        base = "".join(f"<td>{_fmt(result.baselines[b].get(m0.key))}</td>"
                       for b in ("random", "longer_wins", "shorter_wins"))
        rows.append(f"<tr class='{m0.level}'><td>{html.escape(m0.key)}</td>{cells}<td>{m0.n}</td>{base}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def comparisons_table(result: EvalResult) -> str:
    if not result.comparisons:
        return ""
    rows = ["<tr><th>metric</th><th>model A</th><th>model B</th><th>B − A</th><th>95% interval</th><th>p</th></tr>"]
    for c in result.comparisons:
        if c.key.startswith("subset/"):
            continue
        r = c.result
        sig = " class='sig'" if np.isfinite(r.p_value) and r.p_value < 0.05 else ""
        rows.append(f"<tr><td>{html.escape(c.key)}</td><td>{html.escape(_short(c.model_a))}</td>"
                    f"<td>{html.escape(_short(c.model_b))}</td><td{sig}>{_fmt(r.diff)}</td>"
                    f"<td>[{_fmt(r.low)}, {_fmt(r.high)}]</td><td{sig}>{_fmt(r.p_value)}</td></tr>")
    return ("<h2>Paired differences</h2><p>Both models scored on the same items; the interval and p-value come "
            "from the same bootstrap resamples for both (paired). Subset-level tests are in results.json.</p>"
            "<table>" + "".join(rows) + "</table>")


def details_table(result: EvalResult) -> str:
    fields = [("ECE of σ(Δ)", lambda m: _fmt(m.calibration.ece)), ("log loss", lambda m: _fmt(m.calibration.log_loss)),
              ("Spearman(score, length)", lambda m: _fmt(m.length_bias.score_length_spearman)),
              ("Spearman(Δscore, Δlength)", lambda m: _fmt(m.length_bias.margin_length_spearman)),
              ("acc. when correct is longer", lambda m: _fmt(m.length_bias.accuracy_correct_longer)),
              ("acc. when correct is shorter", lambda m: _fmt(m.length_bias.accuracy_correct_shorter)),
              ("items with a truncated input", lambda m: str(m.truncated_items)),
              ("distinct inputs / from cache", lambda m: f"{m.scoring['distinct_inputs']} / {m.scoring['from_cache']}"),
              ("scoring time (s)", lambda m: _fmt(m.scoring["seconds"], 1)),
              ("scorer fingerprint", lambda m: html.escape(str(m.scorer.get("fingerprint", m.scorer.get(
                  "policy_fingerprint", "–")))[:16]))]
    head = "".join(f"<th>{html.escape(_short(m.spec))}</th>" for m in result.models)
    rows = [f"<tr><th></th>{head}</tr>"]
    rows += [f"<tr><td>{name}</td>" + "".join(f"<td>{fn(m)}</td>" for m in result.models) + "</tr>"
             for name, fn in fields]
    return "<table>" + "".join(rows) + "</table>"


def _kv(d: dict[str, Any]) -> str:
    return "<table>" + "".join(f"<tr><td>{html.escape(str(k))}</td><td><code>{html.escape(str(v))}</code></td></tr>"
                               for k, v in d.items()) + "</table>"


def render_html(result: EvalResult, scored: Sequence[Any]) -> str:
    """The report page as a string."""
    cards = "".join(
        f"<div class='card'><div class='muted'>{html.escape(_short(m.spec))}</div>"
        f"<div class='big'>{_fmt(m.metric('overall').value if m.metric('overall') else None)}</div>"
        f"<div class='muted'>95% [{_fmt(m.metric('overall').low)}, {_fmt(m.metric('overall').high)}]</div></div>"
        for m in result.models)
    base = result.baselines
    cards += (f"<div class='card'><div class='muted'>trivial baselines (same items)</div>random "
              f"{_fmt(base['random'].get('overall'))}<br>longer-wins {_fmt(base['longer_wins'].get('overall'))}"
              f"<br>shorter-wins {_fmt(base['shorter_wins'].get('overall'))}</div>")
    d, s = result.data, result.settings
    parts = [
        f"<h1>rewardkit eval · {html.escape(result.benchmark)}</h1>",
        f"<p class='muted'>{html.escape(result.description)}<br>data <code>{html.escape(d.source)}</code>: "
        f"{d.items} items, {d.responses} responses ({d.skipped_invalid} invalid records skipped)</p>",
        f"<div class='cards'>{cards}</div>", "<h2>Scores</h2>", metrics_table(result),
        comparisons_table(result), "<h2>Per section and subset</h2>", fig_metrics(result),
        "<h2>Calibration and score distributions</h2>", fig_reliability(result), fig_histograms(result),
        "<h2>Length bias</h2>", fig_length(result, scored), "<h2>Details</h2>", details_table(result),
        "<h2>Data notes</h2>", _kv({**d.notes, "invalid (first few)": d.invalid, "subsets": d.subsets}),
        "<h2>Settings (reproduce with these)</h2>", _kv({**{k: v for k, v in s.to_dict().items() if k != "versions"},
                                                         **s.versions, "data sha256": d.fingerprint}),
    ]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>rewardkit eval: "
            f"{html.escape(result.benchmark)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


def write_report(result: EvalResult, scored: Sequence[Any], path: str | Path) -> Path:
    """Write ``report.html`` atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(render_html(result, scored), encoding="utf-8")
    tmp.replace(target)
    return target


CHROMIUM_INSTALL = "apt-get install -y chromium"
CONSOLE_ERRORS = ("Uncaught", "ERROR:CONSOLE")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render_png(html_path: str | Path, png_path: str | Path, *, width: int = 1280, height: int = 2400,
               timeout: float = 120.0) -> list[str]:
    """Screenshot ``html_path`` in headless Chromium (no network); return the console-error lines."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError(f"no Chromium found to render the report; install it with `{CHROMIUM_INSTALL}`")
    with tempfile.TemporaryDirectory(prefix="rk-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", f"--screenshot={png_path}",
               f"--window-size={width},{height}", Path(html_path).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    errors = [line for line in (proc.stderr + proc.stdout).splitlines() if any(e in line for e in CONSOLE_ERRORS)]
    if proc.returncode != 0 or not Path(png_path).exists():
        raise RuntimeError(f"chromium exited with {proc.returncode}: {proc.stderr[-2000:]}")
    return errors
