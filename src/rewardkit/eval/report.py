"""``report.html``: one self-contained page (inline CSS and PNG images, no script, no network).

It opens with what can make a headline number misleading: an overall that misses a published
section ("3 of 4 domains") and the share of items whose input was truncated (a warning above
:data:`TRUNCATION_WARN`). Then the section table with 95% intervals next to the trivial baselines,
bars with intervals in two panels (overall and sections; subsets -- so a section and a subset of the
same name never share a label), a reliability diagram, chosen-vs-rejected score histograms and a
length-bias plot; with several models, side-by-side columns and a paired-bootstrap test of each
difference. It also lists the data notes and the exact settings. :func:`render_png` screenshots it in
headless Chromium.
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

from rewardkit.data.io import atomic_write_text
from rewardkit.eval.results import EvalResult, Metric, ModelResult

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
WARN_COLOR = "#b00"
TRUNCATION_WARN = 0.10  # above this share of items with a truncated input, the headline warns
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{padding:3px 9px;border-bottom:1px solid #eee;
text-align:right} th{background:#f5f5f5} td:first-child,th:first-child{text-align:left}
tr.overall td{font-weight:bold;background:#fafaf0} tr.section td{font-weight:600} .muted{color:#777}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;padding:10px 14px}
.big{font-size:26px;font-weight:bold} img{max-width:100%;border:1px solid #eee;margin:6px 0}
code{background:#f4f4f4;padding:1px 4px;font-size:12px} .sig{color:#b00;font-weight:bold}
.warn{border:1px solid #e0a0a0;background:#fff3f3;color:#700;border-radius:6px;padding:8px 12px;margin:8px 0}
.flag{color:#b00;font-weight:600} .card.flagged{border-color:#e0a0a0}
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


def metric_panels(result: EvalResult) -> list[tuple[str, list[str]]]:
    """The bar panels: (title, metric keys). Overall and section rows in one, subsets in the other, so a
    section and a subset with the same name ("chat") are never two bars with one label."""
    keys = [m.key for m in result.models[0].metrics]
    top = [k for k in keys if k.split("/")[0] in ("overall", "section")]
    subsets = [k for k in keys if k.split("/")[0] == "subset"]
    unit = result.coverage.unit if result.coverage else "sections"
    has_sections = any(k.startswith("section/") for k in top)
    panels = [(f"overall and {unit}" if has_sections else "overall", top), ("subsets", subsets)]
    return [(title, ks) for title, ks in panels if ks]


def _bar_label(key: str, result: EvalResult) -> str:
    label = key if key.startswith("overall") else key.partition("/")[2]  # "overall/hard" stays whole
    if key == "overall" and not result.complete and result.coverage is not None:
        return f"overall (INCOMPLETE: {result.coverage.short()})"
    return label


def _bars(ax: Any, result: EvalResult, keys: Sequence[str]) -> None:
    """One panel: a bar per key and model with its 95% interval, and the baselines as markers."""
    n, k = len(keys), len(result.models)
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
    ax.set_yticks(np.arange(n), [_bar_label(key, result) for key in keys], fontsize=8)
    for tick, key in zip(ax.get_yticklabels(), keys, strict=True):
        if key == "overall" and not result.complete:
            tick.set_color(WARN_COLOR)
            tick.set_fontweight("bold")
    ax.set_ylim(n - 0.5, -0.5)  # first key on top
    ax.set_xlim(0, 1)
    ax.grid(axis="x", alpha=0.3)


def fig_metrics(result: EvalResult) -> str:
    """:func:`metrics_figure` as an inline PNG."""
    return _png(metrics_figure(result))


def metrics_figure(result: EvalResult) -> Any:
    """Horizontal bars per metric and model with 95% intervals and baselines: one panel for the overall
    and sections, one for subsets; the legend sits above the panels, clear of every bar."""
    plt = _plt()
    panels = metric_panels(result) or [("overall", ["overall"])]
    k = len(result.models)
    rows = [max(1.0, len(keys) * max(1.0, k * 0.6)) for _, keys in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 0.9 + 0.5 * len(panels) + 0.3 * sum(rows)),
                             gridspec_kw={"height_ratios": rows}, squeeze=False)
    for ax, (title, keys) in zip(axes[:, 0], panels, strict=True):
        _bars(ax, result, keys)
        ax.set_title(title, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("score (95% bootstrap interval)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(labels), 5),
               fontsize=8, frameon=False)
    return fig


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


def uncertainty_section(result: EvalResult) -> str:
    """Accuracy against coverage (abstaining on the most uncertain items) and each objective's own accuracy,
    for the models that report them; empty when none does."""
    with_u = [(j, m) for j, m in enumerate(result.models) if m.abstention is not None]
    with_o = [m for m in result.models if m.objectives]
    if not with_u and not with_o:
        return ""
    parts = ["<h2>Uncertainty and objectives</h2>"]
    if with_u:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(5.4, 3.8))
        rows = ["<tr><th>model</th><th>all items</th><th>80% most certain</th><th>area</th><th>gain</th></tr>"]
        for j, m in with_u:
            a = m.abstention
            assert a is not None
            ax.plot([c for c, _ in a.grid], [v for _, v in a.grid], "-o", ms=3, color=COLORS[j % len(COLORS)],
                    label=f"{_short(m.spec)} (area {_fmt(a.area[0])})")
            ax.axhline(a.accuracy_all[0], ls=":", lw=0.8, color=COLORS[j % len(COLORS)])
            rows.append(f"<tr><td>{html.escape(_short(m.spec))}</td>" + "".join(
                f"<td>{_fmt(v[0])} <span class='muted'>[{_fmt(v[1])}, {_fmt(v[2])}]</span></td>"
                for v in (a.accuracy_all, a.accuracy_at_80, a.area, a.gain)) + "</tr>")
        ax.invert_xaxis()
        ax.set_xlabel("coverage (share of items kept, most certain first)")
        ax.set_ylabel("accuracy on the kept items")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        parts += ["<p>The model abstains on its most uncertain items (item uncertainty = sqrt of the sum of its "
                  "responses' U²); dotted: accuracy on all items. The area is the mean accuracy over all coverages; "
                  "gain = area − accuracy on all.</p>", _png(fig), "<table>" + "".join(rows) + "</table>"]
    for m in with_o:
        cells = "".join(f"<tr><td>{html.escape(name)}</td><td>{_fmt(v['value'])} <span class='muted'>"
                        f"[{_fmt(v['ci95_low'])}, {_fmt(v['ci95_high'])}]</span></td></tr>"
                        for name, v in (m.objectives or {}).items())
        parts.append(f"<p>{html.escape(_short(m.spec))}: the benchmark's overall with each objective alone as the "
                     f"score</p><table><tr><th>objective</th><th>overall</th></tr>{cells}</table>")
        if m.gating:
            g = m.gating
            rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{_fmt(v['mean'])} ± {_fmt(v['std'])}</td></tr>"
                           for name, v in g["objectives"].items())
            parts.append(f"<p>Gating weights (mean ± std over the scored responses): the top weight holds "
                         f"{_fmt(g['top_weight_mean'])} on average; entropy {_fmt(g['entropy_mean'])} nats vs "
                         f"{_fmt(g['entropy_uniform'])} for uniform weights.</p><table><tr><th>objective</th>"
                         f"<th>weight</th></tr>{rows}</table>")
    return "".join(parts)


# ----------------------------------------------------------------------------- tables and page


def metrics_table(result: EvalResult) -> str:
    head = "".join(f"<th>{html.escape(_short(m.spec))}</th>" for m in result.models)
    rows = [f"<tr><th>metric</th>{head}<th>n</th><th>random</th><th>longer-wins</th><th>shorter-wins</th></tr>"]
    for m0 in result.models[0].metrics:
        cells = "".join(f"<td>{_ci(m.metric(m0.key))}</td>" for m in result.models)
        base = "".join(f"<td>{_fmt(result.baselines[b].get(m0.key))}</td>"
                       for b in ("random", "longer_wins", "shorter_wins"))
        name = html.escape(m0.key)
        if m0.key == "overall" and not result.complete and result.coverage is not None:
            name += f" <span class='flag'>(incomplete: {html.escape(result.coverage.short())})</span>"
        rows.append(f"<tr class='{m0.level}'><td>{name}</td>{cells}<td>{m0.n}</td>{base}</tr>")
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
              ("items with a truncated input", lambda m: _truncated(m)),
              ("distinct inputs / from cache", lambda m: f"{m.scoring['distinct_inputs']} / {m.scoring['from_cache']}"),
              ("scoring time (s)", lambda m: _fmt(m.scoring["seconds"], 1)),
              ("scorer fingerprint", lambda m: html.escape(str(m.scorer.get("fingerprint", m.scorer.get(
                  "policy_fingerprint", "–")))[:16]))]
    head = "".join(f"<th>{html.escape(_short(m.spec))}</th>" for m in result.models)
    rows = [f"<tr><th></th>{head}</tr>"]
    rows += [f"<tr><td>{name}</td>" + "".join(f"<td>{fn(m)}</td>" for m in result.models) + "</tr>"
             for name, fn in fields]
    return "<table>" + "".join(rows) + "</table>"


def _truncated(m: ModelResult) -> str:
    """``"239 of 240 items (99.6%)"``."""
    share = m.truncated_share
    pct = f"{100 * share:.1f}".removesuffix(".0") if np.isfinite(share) else "–"
    return f"{m.truncated_items} of {m.n_items} items ({pct}%)"


def _max_length(m: ModelResult) -> str:
    n = m.scorer.get("max_length")
    return f" at {n} tokens" if n else ""


def warnings_html(result: EvalResult) -> str:
    """The banners above the headline: an incomplete overall; truncation above :data:`TRUNCATION_WARN`."""
    out = []
    cov = result.coverage
    if cov is not None and not cov.complete:
        out.append(f"<div class='warn'><b>Overall incomplete: {html.escape(cov.headline())}.</b> The overall is the "
                   f"mean of the {len(cov.present)} {html.escape(cov.unit)} present and is not comparable to the "
                   f"published {html.escape(result.benchmark)} overall.</div>")
    for m in result.models:
        if np.isfinite(m.truncated_share) and m.truncated_share > TRUNCATION_WARN:
            out.append(f"<div class='warn'><b>Truncated inputs ({html.escape(_short(m.spec))}): "
                       f"{_truncated(m)}</b> had an input cut{_max_length(m)}; their scores ignore the cut text. "
                       "Raise --max-length if the model allows it.</div>")
    return "".join(out)


def _card(result: EvalResult, m: ModelResult) -> str:
    overall = m.metric("overall")
    flag = ""
    if not result.complete and result.coverage is not None:
        flag = f"<div class='flag'>incomplete: {html.escape(result.coverage.short())}</div>"
    cut = m.truncated_share > TRUNCATION_WARN if np.isfinite(m.truncated_share) else False
    trunc = f"<div class='{'flag' if cut else 'muted'}'>truncated: {_truncated(m)}</div>"
    return (f"<div class='card{' flagged' if flag or cut else ''}'><div class='muted'>{html.escape(_short(m.spec))}"
            f"</div><div class='big'>{_fmt(overall.value if overall else None)}</div>{flag}"
            f"<div class='muted'>95% [{_fmt(overall.low if overall else None)}, "
            f"{_fmt(overall.high if overall else None)}]</div>{trunc}</div>")


def _notes(d: Any) -> str:
    items = "".join(f"<li>{html.escape(r)}</li>" for r in d.remarks())
    return (f"<ul>{items}</ul>" if items else "") + _kv({"invalid (first few)": d.invalid, "subsets": d.subsets})


def _kv(d: dict[str, Any]) -> str:
    return "<table>" + "".join(f"<tr><td>{html.escape(str(k))}</td><td><code>{html.escape(str(v))}</code></td></tr>"
                               for k, v in d.items()) + "</table>"


def render_html(result: EvalResult, scored: Sequence[Any]) -> str:
    """The report page as a string."""
    cards = "".join(_card(result, m) for m in result.models)
    base = result.baselines
    cards += (f"<div class='card'><div class='muted'>trivial baselines (same items)</div>random "
              f"{_fmt(base['random'].get('overall'))}<br>longer-wins {_fmt(base['longer_wins'].get('overall'))}"
              f"<br>shorter-wins {_fmt(base['shorter_wins'].get('overall'))}</div>")
    d, s = result.data, result.settings
    parts = [
        f"<h1>rewardkit eval · {html.escape(result.benchmark)}</h1>",
        f"<p class='muted'>{html.escape(result.description)}<br>data <code>{html.escape(d.source)}</code>: "
        f"{d.items} items, {d.responses} responses ({d.skipped_invalid} invalid records skipped)</p>",
        warnings_html(result), f"<div class='cards'>{cards}</div>", "<h2>Scores</h2>", metrics_table(result),
        comparisons_table(result), "<h2>Per section and subset</h2>", fig_metrics(result),
        "<h2>Calibration and score distributions</h2>", fig_reliability(result), fig_histograms(result),
        "<h2>Length bias</h2>", fig_length(result, scored), uncertainty_section(result),
        "<h2>Details</h2>", details_table(result),
        "<h2>Data notes</h2>", _notes(d),
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
    atomic_write_text(target, render_html(result, scored))
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
