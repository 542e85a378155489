"""The ``rewardkit`` command line (top layer): ``rewardkit.cli.main`` parses, calls one library
function, prints and exits."""

from __future__ import annotations

from rewardkit.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
