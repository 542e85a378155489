"""Verifiers: programmatic checks of instructions, math answers and code (the code sandbox).

The lowest layer's checking tools: pure functions with no model, used by the synthetic tasks' gold
rewards, the ``verifier`` and ``hybrid:`` scorers and the reward server.
"""
