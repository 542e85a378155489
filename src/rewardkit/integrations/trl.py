"""Reward functions for TRL's ``GRPOTrainer(reward_funcs=[...])``, built from any rewardkit scorer spec.

    from rewardkit.integrations.trl import reward_function
    trainer = GRPOTrainer(model=..., train_dataset=..., args=GRPOConfig(...),
                          reward_funcs=[reward_function("rm:runs/rm", pessimism=1.0),
                                        reward_function("verifier", name="rewardkit/verifier")])

TRL calls each function as ``f(prompts=..., completions=..., completion_ids=..., **columns)``: prompts and
completions are strings (standard datasets) or lists of ``{"role", "content"}`` messages (conversational
datasets), and every other dataset column comes as a keyword (one value per completion), with TRL's own
``trainer_state`` / ``log_extra`` / ``log_metric``. They become the same (prompt, response, conversational)
messages ``rewardkit score`` and the server build (text -> one user / assistant turn, not conversational), so
a reward here equals ``build_scorer(spec).score(...)`` on the same pair.

Scoring runs in this process (:func:`reward_function`; the scorer is built on the first call), or on a
running ``rewardkit serve`` (:func:`remote_reward_function`; an item the server cannot score is ``None``,
which TRL treats as "no reward from this function").

Verifier references: ``verifier`` / ``hybrid:SPEC`` look a prompt's checks up in their items file
(``items=``, matched by the exact prompt). A dataset may instead carry them per row, in columns named
``constraints`` / ``answer`` / ``tests`` (see :mod:`rewardkit.scorers.verifier`): a row with any of them is
checked against its own columns; a row with none falls back to the items file (and, for ``hybrid``, to the
reward model). Other scorers do not read dataset columns.

Each function's ``__name__`` (default ``rewardkit/<kind>``, e.g. ``rewardkit/rm``) is the name TRL logs it
under (``rewards/rewardkit/rm/mean``); give two functions of one kind distinct ``name=``s. When the scorer
reports uncertainty, the last call's values are kept in ``last_uncertainty`` and their mean is logged
through TRL's ``log_metric`` as ``<name>/uncertainty``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.data.formats import Message
from rewardkit.errors import OptionError
from rewardkit.integrations import server_config, shared_client
from rewardkit.scorers.verifier import Reference, VerifierScorer, response_text
from rewardkit.scoring import Scorer, ScorerOptions, build_scorer, check_pessimism, parse_spec

REFERENCE_COLUMNS = ("constraints", "answer", "tests")
VERIFYING_KINDS = ("verifier", "hybrid")
DEFAULT_TIMEOUT_S = 180.0

TextOrMessages = str | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Batch:
    """TRL's (prompt, completion) pairs as rewardkit messages: N prompts, N responses, N conversational flags."""

    prompts: list[list[Message]]
    responses: list[list[Message]]
    conversational: list[bool]


def to_messages(value: TextOrMessages, role: str) -> tuple[list[Message], bool]:
    """Messages and whether they were given as messages: text is one ``role`` turn, not conversational."""
    if isinstance(value, str):
        return [{"role": role, "content": value}], False
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value], True


def to_batch(prompts: Sequence[TextOrMessages], completions: Sequence[TextOrMessages]) -> Batch:
    """The rewardkit form of TRL's standard (strings) or conversational (message lists) inputs."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    out = Batch([], [], [])
    for p, c in zip(prompts, completions, strict=True):
        pm, pc = to_messages(p, "user")
        cm, cc = to_messages(c, "assistant")
        out.prompts.append(pm)
        out.responses.append(cm)
        out.conversational.append(pc or cc)
    return out


def _constraint(c: Mapping[str, Any]) -> dict[str, Any]:
    """A constraint dict as read from a ``datasets`` column, whose structs carry every key of the column
    (None where a row's constraint lacks it): the None-valued params dropped."""
    params = c.get("params") or {}
    return {"kind": c["kind"], "params": {k: v for k, v in params.items() if v is not None}}


def row_references(n: int, columns: Mapping[str, Sequence[Any]]) -> list[Reference | None] | None:
    """Each row's reference from its ``constraints`` / ``answer`` / ``tests`` columns (None for a row with none
    of them), or None when the dataset has none of these columns."""
    present = {k: columns[k] for k in REFERENCE_COLUMNS if k in columns}
    if not present:
        return None
    refs: list[Reference | None] = []
    for i in range(n):
        row = {k: v[i] for k, v in present.items()}
        if row.get("constraints"):
            row["constraints"] = [_constraint(c) for c in row["constraints"]]
        refs.append(Reference.from_row(row))
    return refs


def verifier_of(scorer: Any) -> VerifierScorer | None:
    """The verifier inside a ``verifier`` or ``hybrid`` scorer (also behind pessimism), else None."""
    if isinstance(scorer, VerifierScorer):
        return scorer
    inner = getattr(scorer, "verifier", None)
    return inner if isinstance(inner, VerifierScorer) else None


class RewardFunction:
    """A TRL GRPO reward function that scores in this process with ``build_scorer(spec, options)``.
    Build it with :func:`reward_function`. Picklable: the scorer is rebuilt where it is unpickled."""

    def __init__(self, spec: str, options: ScorerOptions, name: str) -> None:
        self.spec = spec
        self.options = options
        self.__name__ = name
        self.last_uncertainty: list[float] | None = None
        self._scorer: Scorer | None = None

    @property
    def scorer(self) -> Scorer:
        """The scorer, built on first use."""
        if self._scorer is None:
            self._scorer = build_scorer(self.spec, self.options)
        return self._scorer

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_scorer": None}

    def __repr__(self) -> str:
        return f"RewardFunction({self.spec!r}, name={self.__name__!r})"

    def __call__(self, prompts: Sequence[TextOrMessages], completions: Sequence[TextOrMessages],
                 completion_ids: Sequence[Sequence[int]] | None = None, **columns: Any) -> list[float]:
        """Rewards (N,) as floats, one per (prompt, completion), in input order."""
        batch = to_batch(prompts, completions)
        n = len(batch.prompts)
        rewards = np.zeros(n, dtype=np.float64)
        uncertainty: np.ndarray | None = None
        verifier = verifier_of(self.scorer)
        refs = row_references(n, columns) if verifier is not None else None
        rest = list(range(n)) if refs is None else [i for i, r in enumerate(refs) if r is None]
        if refs is not None and len(rest) < n:
            own = [i for i in range(n) if refs[i] is not None]
            rewards[own] = verifier.score_references(  # type: ignore[union-attr]
                [refs[i] for i in own], [response_text(batch.responses[i]) for i in own])  # type: ignore[misc]
        if rest:
            out = self.scorer.score([batch.prompts[i] for i in rest], [batch.responses[i] for i in rest],
                                    [batch.conversational[i] for i in rest])
            rewards[rest] = out.rewards
            if out.uncertainty is not None and len(rest) == n:
                uncertainty = out.uncertainty.astype(np.float64)
        self.last_uncertainty = None if uncertainty is None else uncertainty.tolist()
        log_metric = columns.get("log_metric")
        if uncertainty is not None and callable(log_metric):
            log_metric(f"{self.__name__}/uncertainty", float(uncertainty.mean()))
        return rewards.tolist()


def default_name(spec: str) -> str:
    """``rewardkit/<kind>`` of a scorer spec: ``rewardkit/rm``, ``rewardkit/verifier``, ``rewardkit/length``..."""
    return f"rewardkit/{parse_spec(spec)[0]}"


def reward_function(
    spec: str, *, pessimism: float = 0.0, items: Any = None, name: str | None = None,
    options: ScorerOptions | None = None, device: str | None = None, dtype: str | None = None,
    batch_tokens: int | None = None, max_length: int | None = None, lazy: bool = False,
) -> RewardFunction:
    """A reward function for ``GRPOTrainer(reward_funcs=[...])`` scoring with ``build_scorer(spec, ...)``.

    ``spec``: any scorer spec (``rm:DIR`` or a bare RM folder, ``direction:RM#w``, ``hybrid:SPEC``,
    ``verifier``, ``verifier:FILE``, ``length``...). ``pessimism`` k: every reward is ``r − k·U`` (needs a
    scorer with uncertainty; refused when the scorer is built). ``items``: the verifier's items file (or rows);
    ``verifier`` / ``hybrid`` without it check only rows that carry ``constraints`` / ``answer`` / ``tests``
    columns. ``options`` is the base :class:`~rewardkit.scoring.ScorerOptions`; the other keywords, when
    given, replace its fields. ``name`` is the name TRL logs (default ``rewardkit/<kind>``). The scorer is built
    here, so a bad spec or option fails before training starts (``lazy=True``: on the first call).
    """
    if name == "":
        raise OptionError("a reward function needs a non-empty name (TRL logs rewards under it)")
    base = options or ScorerOptions()
    fields: dict[str, Any] = {"device": device, "dtype": dtype, "batch_tokens": batch_tokens,
                              "max_length": max_length, "items": items}
    given = {k: v for k, v in fields.items() if v is not None}
    if pessimism:
        given["pessimism"] = check_pessimism(pessimism)
    kind = parse_spec(spec)[0]
    if kind in VERIFYING_KINDS and given.get("items", base.items) is None:
        given["items"] = ()  # references come from the dataset's columns only
    fn = RewardFunction(spec, dataclasses.replace(base, **given), name or default_name(spec))
    if not lazy:
        fn.scorer  # noqa: B018  (builds it)
    return fn


def remote_reward_function(url: str | None = None, *, api_key: str | None = None, name: str = "rewardkit/remote",
                           timeout: float = DEFAULT_TIMEOUT_S) -> Callable[..., list[float | None]]:
    """A reward function that scores on a running ``rewardkit serve`` (``url``, else ``REWARDKIT_URL``; several
    comma-separated URLs share each batch). An item the server could not score is None (TRL: no reward from
    this function for it). The server's own scorer, items and pessimism apply; dataset columns are not sent."""
    if not name:
        raise OptionError("a reward function needs a non-empty name (TRL logs rewards under it)")
    url, key = server_config(url, api_key)

    def remote(prompts: Sequence[TextOrMessages], completions: Sequence[TextOrMessages],
               completion_ids: Sequence[Sequence[int]] | None = None, **columns: Any) -> list[float | None]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        result = shared_client(url, key, timeout).score(
            [(_plain(p), _plain(c)) for p, c in zip(prompts, completions, strict=True)])
        return [None if r is None or not math.isfinite(r) else r for r in result.rewards]

    remote.__name__ = remote.__qualname__ = name
    return remote


def _plain(value: TextOrMessages) -> Any:
    """Text as is; messages as plain ``{"role", "content"}`` dicts (the server rejects other keys)."""
    return value if isinstance(value, str) else [{"role": m["role"], "content": m["content"]} for m in value]
