"""rewardkit: train, benchmark, serve and use reward models for LLM alignment."""

from __future__ import annotations

__version__ = "0.1.0"
