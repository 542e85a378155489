"""Result types shared by every layer (shapes and dtypes in the docstrings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScoreOutput:
    """What every scorer returns for N (prompt, response) items.

    ``rewards``: (N,) float32, the scalar reward (for a multi-objective head, its documented formula).
    ``truncated``: (N,) bool, whether the truncation policy cut the input.
    ``objectives``: optional (N, K) float32, one column per objective, named by ``objective_names``.
    ``uncertainty``: optional (N,) float32, how unsure the scorer is of each reward (larger = less sure).
    ``weights``: optional (N, K) float32, a gated multi-objective head's weights over the objectives (the
    gating network's output for each item's prompt; columns ``objective_names``).
    ``rationales``: optional (N,) object array, a generative judge's written rationale(s) per item (a tuple
    of strings: one per order asked).
    """

    rewards: np.ndarray
    truncated: np.ndarray
    objectives: np.ndarray | None = None
    objective_names: tuple[str, ...] = ()
    uncertainty: np.ndarray | None = None
    weights: np.ndarray | None = None
    rationales: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.rewards)
        if len(self.truncated) != n:
            raise ValueError(f"rewards has {n} items but truncated has {len(self.truncated)}")
        if self.objectives is not None:
            if self.objectives.ndim != 2 or self.objectives.shape[0] != n:
                raise ValueError(f"objectives must be (N={n}, K), got {self.objectives.shape}")
            if len(self.objective_names) != self.objectives.shape[1]:
                raise ValueError(f"{self.objectives.shape[1]} objectives but names {list(self.objective_names)}")
        if self.uncertainty is not None and self.uncertainty.shape != (n,):
            raise ValueError(f"uncertainty must be (N={n},), got {self.uncertainty.shape}")
        if self.weights is not None and (self.objectives is None or self.weights.shape != self.objectives.shape):
            raise ValueError(f"weights must be (N, K) like the objectives, got {self.weights.shape}")
        if self.rationales is not None and self.rationales.shape != (n,):
            raise ValueError(f"rationales must be (N={n},), got {self.rationales.shape}")

    def objectives_of(self, i: int) -> dict[str, float] | None:
        """Item ``i``'s objective values by name, or None when the scorer has no objectives."""
        if self.objectives is None:
            return None
        return {name: float(v) for name, v in zip(self.objective_names, self.objectives[i], strict=True)}

    def weights_of(self, i: int) -> dict[str, float] | None:
        """Item ``i``'s gating weights by objective name, or None when the scorer has no gate."""
        if self.weights is None:
            return None
        return {name: float(v) for name, v in zip(self.objective_names, self.weights[i], strict=True)}

    @classmethod
    def concat(cls, parts: Sequence[ScoreOutput]) -> ScoreOutput:
        """The items of ``parts`` one after another (all with the same optional fields and objective names)."""
        if not parts:
            raise ValueError("nothing to concatenate")

        def cat(name: str) -> np.ndarray | None:
            values = [getattr(part, name) for part in parts]
            if all(v is None for v in values):
                return None
            if any(v is None for v in values):
                raise ValueError(f"some parts have {name} and some do not")
            return np.concatenate(values)

        names = {part.objective_names for part in parts}
        if len(names) > 1:
            raise ValueError(f"parts name different objectives: {sorted(names)}")
        return cls(cat("rewards"), cat("truncated"), cat("objectives"), parts[0].objective_names,  # type: ignore[arg-type]
                   cat("uncertainty"), cat("weights"), cat("rationales"))

    def select(self, index: Sequence[int] | np.ndarray) -> ScoreOutput:
        """The items at ``index``, in that order."""
        idx = np.asarray(index, dtype=np.int64)
        return ScoreOutput(self.rewards[idx], self.truncated[idx],
                           None if self.objectives is None else self.objectives[idx], self.objective_names,
                           None if self.uncertainty is None else self.uncertainty[idx],
                           None if self.weights is None else self.weights[idx],
                           None if self.rationales is None else self.rationales[idx])
