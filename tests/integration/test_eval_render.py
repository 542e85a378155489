"""``report.html`` renders in a real headless Chromium (Debian's ``chromium``) without console errors.

Not skipped when Chromium is missing: it fails and says how to install it (CI installs it).
Fast: the ``length`` scorer and a tiny random BERT reward model on the RewardBench fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from rewardkit.cli import main
from rewardkit.eval.report import CHROMIUM_INSTALL, find_chromium, render_png
from tiny_models import tiny_bert

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "eval" / "rewardbench" / "filtered.jsonl"
pytestmark = pytest.mark.usefixtures("hf_datasets_cache")


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    if find_chromium() is None:
        pytest.fail(f"Chromium is needed to render report.html; install it with `{CHROMIUM_INSTALL}`")
    rm = tiny_bert(tmp_path / "tiny-bert")
    out = tmp_path / "eval"
    assert main(["eval", "--model", "length", "--model", str(rm), "--data", str(FIXTURE), "--benchmark",
                 "rewardbench", "--out", str(out), "--skip-invalid", "--n-boot", "300"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [m["spec"] for m in results["models"]] == ["length", str(rm)]
    assert any(c["key"] == "overall" for c in results["comparisons"])
    page = (out / "report.html").read_text()
    assert "Paired differences" in page and page.count("<img") == 4

    png = tmp_path / "report.png"
    errors = render_png(out / "report.html", png, width=1280, height=2400)
    assert errors == [], errors
    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (2400, 1280)
    assert image[..., :3].std() > 0.05  # not a blank page
