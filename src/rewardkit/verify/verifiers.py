"""Programmatic instruction checks: the gold reward of the ``ifeval-lite`` task.

A :class:`Constraint` is a checkable instruction ("Answer in fewer than 40 words."); its ``kind``
names a checker in :data:`VERIFIERS` and its ``params`` are that checker's keyword arguments. Every
checker is a pure, dependency-free function ``(response: str, **params) -> bool``, fast enough to be
used as the reward of a Best-of-N sampler.

Conventions shared by the checkers (each is tested in ``tests/unit/infer/test_verifiers.py``):

* a *word* is a whitespace-separated token holding at least one letter or digit (so a markdown
  bullet marker ``-`` or a lone ``—`` is not a word);
* casing checks need at least one cased letter: an empty response is neither lowercase nor uppercase;
* keywords match whole words, case-insensitively (``cat`` is not found in ``cats``);
* ``json_keys`` wants the *whole* response (optionally inside one ```` ```json ```` fence) to parse as a
  JSON object whose keys are *exactly* the given keys: extra keys fail, as the instruction says
  "exactly".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewardkit.registry import Registry

Checker = Callable[..., bool]
VERIFIERS: Registry[Checker] = Registry[Checker]("verifier")

_WORD = re.compile(r"\S+")
_FENCE = re.compile(r"^```(?:json)?[ \t]*\n(.*?)\n?[ \t]*```$", re.DOTALL | re.IGNORECASE)

# Natural-language instruction put in the prompt, one per kind; formatted with the params.
_DESCRIPTIONS: dict[str, str] = {
    "max_words": "Answer in fewer than {n} words.",
    "min_words": "Answer in at least {n} words.",
    "lowercase": "Write only in lowercase letters, with no capital letters at all.",
    "uppercase": "Write your entire answer in capital letters.",
    "include_keyword": 'Include the word "{keyword}" in your answer.',
    "exclude_keyword": 'Do not use the word "{keyword}" anywhere in your answer.',
    "json_keys": "Reply with only a JSON object whose keys are exactly {keys}.",
    "end_with_question": "End your answer with a question.",
    "num_bullets": 'Format your answer as exactly {n} markdown bullet points starting with "- ".',
    "no_commas": "Do not use any commas.",
    "start_with": 'Start your answer with "{phrase}".',
}


def _freeze(value: Any) -> Any:
    """Lists become tuples so that a constraint is hashable."""
    return tuple(_freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def _thaw(value: Any) -> Any:
    """Tuples become lists, the JSON form."""
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Constraint:
    """One checkable instruction: a verifier ``kind`` and its params as sorted ``(key, value)`` pairs.

    Build with :meth:`make` (``Constraint.make("max_words", n=40)``) or :meth:`from_dict`.
    """

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, kind: str, **params: Any) -> Constraint:
        return cls(kind, tuple(sorted((k, _freeze(v)) for k, v in params.items())))

    @property
    def kwargs(self) -> dict[str, Any]:
        """The params as keyword arguments for the checker."""
        return dict(self.params)

    def check(self, response: str) -> bool:
        return bool(VERIFIERS.get(self.kind)(response, **self.kwargs))

    def describe(self) -> str:
        """The instruction sentence put in the prompt, e.g. ``"Answer in fewer than 40 words."``."""
        kwargs = self.kwargs
        if self.kind == "json_keys":
            kwargs["keys"] = " and ".join(f'"{k}"' for k in kwargs["keys"])
        return _DESCRIPTIONS[self.kind].format(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"kind": "max_words", "params": {"n": 40}}``."""
        return {"kind": self.kind, "params": {k: _thaw(v) for k, v in self.params}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constraint:
        return cls.make(str(data["kind"]), **dict(data.get("params", {})))


def check_all(response: str, constraints: Sequence[Constraint]) -> list[bool]:
    """Whether ``response`` meets each constraint, in order."""
    return [c.check(response) for c in constraints]


def gold_reward(response: str, constraints: Sequence[Constraint]) -> float:
    """The fraction of ``constraints`` that ``response`` meets, in [0, 1]."""
    if not constraints:
        raise ValueError("gold_reward needs at least one constraint")
    met = check_all(response, constraints)
    return sum(met) / len(met)


def describe_all(constraints: Sequence[Constraint]) -> str:
    """The constraints' instruction sentences joined by spaces."""
    return " ".join(c.describe() for c in constraints)


def count_words(text: str) -> int:
    """Whitespace-separated tokens holding at least one letter or digit."""
    return sum(1 for m in _WORD.finditer(text) if any(ch.isalnum() for ch in m.group()))


def contains_word(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` as a whole word, case-insensitively."""
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that is the whole of ``text`` (optionally fenced), or ``None``."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def bullet_lines(text: str) -> list[str]:
    """Lines that are markdown bullets: ``* `` or ``- `` after optional indentation."""
    return [line for line in text.splitlines() if line.lstrip().startswith(("* ", "- "))]


@VERIFIERS.register("max_words")
def max_words(response: str, *, n: int) -> bool:
    """Fewer than ``n`` words."""
    return count_words(response) < n


@VERIFIERS.register("min_words")
def min_words(response: str, *, n: int) -> bool:
    """At least ``n`` words."""
    return count_words(response) >= n


@VERIFIERS.register("lowercase")
def lowercase(response: str) -> bool:
    """Some cased letter, and no uppercase letter."""
    return any(ch.islower() for ch in response) and not any(ch.isupper() for ch in response)


@VERIFIERS.register("uppercase")
def uppercase(response: str) -> bool:
    """Some cased letter, and no lowercase letter."""
    return any(ch.isupper() for ch in response) and not any(ch.islower() for ch in response)


@VERIFIERS.register("include_keyword")
def include_keyword(response: str, *, keyword: str) -> bool:
    """``keyword`` appears as a whole word (case-insensitive)."""
    return contains_word(response, keyword)


@VERIFIERS.register("exclude_keyword")
def exclude_keyword(response: str, *, keyword: str) -> bool:
    """``keyword`` never appears as a whole word (case-insensitive)."""
    return not contains_word(response, keyword)


@VERIFIERS.register("json_keys")
def json_keys(response: str, *, keys: Sequence[str]) -> bool:
    """The whole response (optionally in a ```` ```json ```` fence) is a JSON object with exactly ``keys``."""
    obj = parse_json_object(response)
    return obj is not None and set(obj) == set(keys)


@VERIFIERS.register("end_with_question")
def end_with_question(response: str) -> bool:
    """The last non-space character is ``?``."""
    return response.rstrip().endswith("?")


@VERIFIERS.register("num_bullets")
def num_bullets(response: str, *, n: int) -> bool:
    """Exactly ``n`` markdown bullet lines (``* `` or ``- ``)."""
    return len(bullet_lines(response)) == n


@VERIFIERS.register("no_commas")
def no_commas(response: str) -> bool:
    """No ``,`` anywhere."""
    return "," not in response


@VERIFIERS.register("start_with")
def start_with(response: str, *, phrase: str) -> bool:
    """Starts with ``phrase``, case-insensitively, ignoring surrounding whitespace."""
    return response.strip().lower().startswith(phrase.strip().lower())
