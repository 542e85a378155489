"""Verifiable synthetic preference data with known gold rewards (``rewardkit data synth``)."""

from __future__ import annotations

from rewardkit.synth.core import TASKS, SynthResult, audit_task, load_embedded, synthesize

__all__ = ["TASKS", "SynthResult", "audit_task", "load_embedded", "synthesize"]
