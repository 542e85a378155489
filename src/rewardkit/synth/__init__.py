"""Verifiable synthetic preference data with known gold rewards (``rewardkit data synth``)."""

from __future__ import annotations

from rewardkit.synth.core import SynthResult, TASKS, load_embedded, synthesize

__all__ = ["TASKS", "SynthResult", "load_embedded", "synthesize"]
