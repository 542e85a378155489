"""The curation report: counts per step and reason, per group, examples, length bias, timings (JSON + HTML)."""

from __future__ import annotations

import html
from collections import Counter
from typing import Any

from rewardkit.curate.config import STEPS, CurateConfig


def _rate(c: Counter) -> float | None:
    unequal = c["longer"] + c["shorter"]
    return c["longer"] / unequal if unequal else None


def build_report(*, config: CurateConfig, path: str, counts: dict[str, Any], state: Any, index: Any,
                 seconds: float) -> dict[str, Any]:
    """The JSON report of one run (see :func:`rewardkit.curate.pipeline.curate`)."""
    n = len(state.fate)
    by_reason: Counter[str] = Counter(d["reason"] for d in state.details.values())
    by_step: Counter[str] = Counter(d["step"] for d in state.details.values())
    report: dict[str, Any] = {
        "input": n, "input_path": path, "kept": n - len(state.details), "removed": len(state.details),
        "removed_by_step": {s: by_step[s] for s in STEPS if s in config.steps},
        "removed_by_reason": dict(sorted(by_reason.items())),
        "group_column": config.per or "source",
        "groups": {g: dict(c) for g, c in sorted(counts["groups"].items())},
        "examples": counts["examples"],
        "length_bias": {"before": _rate(state.before), "after": _rate(counts["kept_lengths"]),
                        "before_counts": dict(state.before), "after_counts": dict(counts["kept_lengths"])},
        "seconds": {k: round(v, 4) for k, v in sorted(state.seconds.items())},
        "total_seconds": round(seconds, 4),
        "pairs_per_s": n / max(seconds - state.seconds["setup"], 1e-9),  # after setup (scorer, index)
        "config": {k: v for k, v in config.__dict__.items() if k not in ("keep_rule", "progress")},
    }
    if state.weights is not None:
        report["length_bias"]["after_weighted"] = _rate(counts["kept_weighted"])
    if index is not None:
        report["decontamination_index"] = {"items": index.items, "prompt_ngrams": len(index.ngrams),
                                           "responses": len(index.responses), "ngram": index.n}
    return report


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page of the report (no scripts, no external assets)."""
    lb = report["length_bias"]
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    reasons = sorted({r for c in report["groups"].values() for r in c} - {"input", "kept"})
    parts = [
        f"<h1>Curation report</h1><p>{html.escape(report['input_path'])}: {report['input']} records, "
        f"kept {report['kept']}, removed {report['removed']}; {report['pairs_per_s']:.0f} pairs/s</p>",
        "<h2>Removed by step</h2>", _table(["step", "removed"], [[k, v] for k, v in report["removed_by_step"].items()]),
        "<h2>Removed by reason</h2>",
        _table(["reason", "removed"], [[k, v] for k, v in report["removed_by_reason"].items()]),
        f"<h2>Per {html.escape(report['group_column'])}</h2>",
        _table(["group", "input", "kept", *reasons],
               [[g, c.get("input", 0), c.get("kept", 0), *(c.get(r, 0) for r in reasons)]
                for g, c in report["groups"].items()]),
        "<h2>Length bias (longer chosen wins)</h2>",
        _table(["before", "after", *(["after, weighted"] if "after_weighted" in lb else [])],
               [[pct(lb["before"]), pct(lb["after"]), *([pct(lb["after_weighted"])] if "after_weighted" in lb else [])]]),
        "<h2>Examples</h2>",
        *(f"<h3>{html.escape(reason)}</h3>" + _table(list(rows[0]), [list(r.values()) for r in rows])
          for reason, rows in report["examples"].items() if rows),
        "<h2>Timings (s)</h2>", _table(["part", "seconds"], [[k, v] for k, v in report["seconds"].items()]),
    ]
    style = ("body{font-family:sans-serif;margin:24px auto;max-width:1100px;color:#222}"
             "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Curation report</title><style>{style}</style>" \
           f"</head><body>{''.join(parts)}</body></html>\n"
