"""report.html: the headline says when the overall misses a published section and how many items were
truncated; section and subset bars never share a label; the legend covers no bar. Runs the RM-Bench
published-file fixture through the runner with the ``table`` scorer (no truncation) and with
``cut-table`` (test_eval_runner: every input but item 1's flagged truncated)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import test_eval_runner  # noqa: F401  (registers the cut-table scorer)
from eval_helpers import FIXTURES

from rewardkit.eval.report import TRUNCATION_WARN, metric_panels, metrics_figure, render_html, warnings_html
from rewardkit.eval.runner import EvalConfig, run_eval

pytestmark = pytest.mark.usefixtures("hf_datasets_cache")
PUBLISHED = FIXTURES / "rmbench" / "published"
TABLE = FIXTURES / "rmbench" / "scores.json"


def _eval(tmp_path: Path, data: Path, scorer: str = "table"):
    cfg = EvalConfig(models=(f"{scorer}:{TABLE}", "length"), data=str(data), benchmark="rmbench",
                     out=str(tmp_path / "out"), n_boot=100, report=False)
    return run_eval(cfg)


def _without_math(tmp_path: Path) -> Path:
    data = tmp_path / "rmbench"
    shutil.copytree(PUBLISHED, data)
    (data / "math_filtered.json").unlink()
    return data


def test_sections_and_subsets_are_separate_panels(tmp_path: Path) -> None:
    result, _ = _eval(tmp_path, PUBLISHED)
    panels = metric_panels(result)
    assert [title for title, _ in panels] == ["overall and domains", "subsets"]
    top, subsets = (keys for _, keys in panels)
    assert "section/chat" in top and "subset/chat" in subsets  # same name, different panels
    assert all(k.startswith(("overall", "section/")) for k in top) and all(k.startswith("subset/") for k in subsets)
    fig = metrics_figure(result)
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert len(labels) == len(set(labels)), labels
    # the legend lies outside (above) every panel: it covers no bar, interval or baseline marker
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    assert all(legend.y0 >= ax.get_window_extent().y1 for ax in fig.axes)


def test_complete_run_without_truncation_has_no_warning(tmp_path: Path) -> None:
    result, scored = _eval(tmp_path, PUBLISHED)
    page = render_html(result, scored)
    assert "class='warn'" not in page and "incomplete" not in page
    assert "truncated: 0 of 6 items (0%)" in page


def test_incomplete_overall_and_truncation_are_in_the_headline(tmp_path: Path) -> None:
    result, scored = _eval(tmp_path, _without_math(tmp_path), scorer="cut-table")
    page = render_html(result, scored)
    head = page[: page.index("<h2>Scores</h2>")]  # the banners and cards above the first table
    assert "Overall incomplete: 3 of 4 domains (missing: math).</b> The overall is the mean of the 3 domains" in head
    assert head.count("incomplete: 3 of 4 domains</div>") == 2  # each model's card
    # cut-table: 4 of the 5 items have a truncated input (all but item 1) -> 80% > 10%: a banner and a red line
    assert "Truncated inputs (" in head and "4 of 5 items (80%)</b> had an input cut" in head
    assert "<div class='flag'>truncated: 4 of 5 items (80%)</div>" in head
    assert "<div class='muted'>truncated: 0 of 5 items (0%)</div>" in head  # the length scorer cuts nothing
    assert "overall <span class='flag'>(incomplete: 3 of 4 domains)</span>" in page
    top = metric_panels(result)[0][1]
    labels = [t.get_text() for t in metrics_figure(result).axes[0].get_yticklabels()]
    assert labels[top.index("overall")] == "overall (INCOMPLETE: 3 of 4 domains)"


def test_truncation_warning_starts_above_ten_percent(tmp_path: Path) -> None:
    result, _ = _eval(tmp_path, PUBLISHED)
    table = result.models[0]
    at = dataclasses.replace(result, models=(dataclasses.replace(table, truncated_items=1, n_items=10),))
    above = dataclasses.replace(result, models=(dataclasses.replace(table, truncated_items=2, n_items=10),))
    assert TRUNCATION_WARN == 0.10
    assert warnings_html(at) == ""  # 1 of 10 = 10%: not above
    assert "Truncated inputs" in warnings_html(above) and "2 of 10 items (20%)" in warnings_html(above)
