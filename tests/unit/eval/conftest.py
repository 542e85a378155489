"""Registers the ``table`` test scorer (see ``eval_helpers``) for every evaluation test."""

from __future__ import annotations

import eval_helpers  # noqa: F401  (registers SCORERS["table"])
