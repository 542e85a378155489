"""Turn raw records into rewardkit's canonical examples, with errors that name the spot.

Supported row formats (detected per row, see :func:`detect_format`):

- ``trl-explicit``        ``{"prompt": str, "chosen": str, "rejected": str}``
- ``trl-implicit``        ``{"chosen": str, "rejected": str}`` -- the shared prefix is the prompt
- ``trl-conversational``  the same keys as lists of ``{"role", "content"}`` messages (prompt optional)
- ``hh-rlhf``             ``{"chosen", "rejected"}`` whole ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` transcripts
- ``rewardbench``         reward-bench v1 rows ``prompt, chosen, rejected, subset, id, ...`` (a chat turn)
- ``completion``          TRL unpaired ``{"prompt", "completion"}`` (scoring only)

Optional columns: ``margin`` (a finite float, the Bradley--Terry margin). Every other column is kept as an
extra. Files are read by :func:`iter_records` (from :mod:`rewardkit.data.io`, re-exported here with
:class:`Location` and :class:`DataError`).

Rules every record must meet (each broken rule is a :class:`DataError` naming file, line and field):

- a response (``chosen``, ``rejected``, ``completion``) is ``assistant`` turns only; ``system``, ``user``
  and ``tool`` turns belong in the prompt, which may hold any of the four roles;
- a response is empty if its text shows nothing: whitespace and :data:`INVISIBLE` characters only
  (zero-width space / non-joiner / joiner, word joiner, BOM, bidi marks, soft hyphen);
- chosen and rejected differ.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rewardkit.data.io import DataError as DataError
from rewardkit.data.io import Location as Location
from rewardkit.data.io import iter_records as iter_records
from rewardkit.data.io import no_records_error as no_records_error
from rewardkit.data.io import read_records as read_records
from rewardkit.errors import InputError

Message = dict[str, str]
ROLES = frozenset({"system", "user", "assistant", "tool"})
RESPONSE_ROLES = frozenset({"assistant"})
FORMATS = ("trl-explicit", "trl-implicit", "trl-conversational", "hh-rlhf", "rewardbench", "completion")
# Invisible format characters (Unicode category Cf) that show nothing: soft hyphen, Mongolian vowel
# separator, zero-width space / non-joiner / joiner, LRM / RLM, bidi embeddings, word joiner and invisible
# operators, bidi isolates and deprecated format controls, BOM (zero-width no-break space).
INVISIBLE = "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
_BLANK = re.compile(f"[\\s{INVISIBLE}]*")
_HAS_INVISIBLE = re.compile(f"[{INVISIBLE}]")
_PAIR_KEYS = frozenset({"prompt", "chosen", "rejected", "margin"})
_HH_HUMAN, _HH_ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_HH_TURN = re.compile("\n\n(Human|Assistant):")


class DataValidationError(InputError, ValueError):
    """A file with bad records; ``errors`` holds the first few, ``n_errors`` counts them all."""

    SKIP_HINT = "fix them, or pass --skip-invalid to leave them out (they are counted and listed)"

    def __init__(self, path: str, errors: list[str] | list[DataError], n_errors: int, *,
                 hint: str = SKIP_HINT) -> None:
        self.path, self.errors, self.n_errors = path, errors, n_errors
        lines = [f"{n_errors} invalid record(s) in {path}:"] + [f"  {e}" for e in errors]
        if n_errors > len(errors):
            lines.append(f"  ... and {n_errors - len(errors)} more (run `rewardkit data check {path}`)")
        lines.append(f"  {hint}")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class PreferenceExample:
    """One preference pair. Texts from plain-text formats are wrapped as user/assistant messages and
    ``conversational`` is False, so encoders concatenate them instead of applying a chat template."""

    prompt: tuple[Message, ...]
    chosen: tuple[Message, ...]
    rejected: tuple[Message, ...]
    conversational: bool
    format: str
    margin: float | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompletionExample:
    """One prompt with one response to score."""

    prompt: tuple[Message, ...]
    completion: tuple[Message, ...]
    conversational: bool
    format: str = "completion"
    extras: Mapping[str, Any] = field(default_factory=dict)


Example = PreferenceExample | CompletionExample




# ----------------------------------------------------------------------------- parsing


def detect_format(record: Mapping[str, Any]) -> str:
    """Name the row format of ``record`` (one of :data:`FORMATS`); raises ``KeyError`` naming what is missing."""
    if "completion" in record and "chosen" not in record:
        return "completion"
    for key in ("chosen", "rejected"):
        if key not in record:
            raise KeyError(key)
    chosen = record["chosen"]
    if isinstance(chosen, list):
        return "trl-conversational"
    if "prompt" in record and record["prompt"] is not None:
        return "rewardbench" if ("subset" in record or "chosen_model" in record) else "trl-explicit"
    if isinstance(chosen, str) and chosen.lstrip().startswith("Human:") and _HH_ASSISTANT in chosen:
        return "hh-rlhf"
    return "trl-implicit"


def parse_record(record: Mapping[str, Any], loc: Location) -> Example:
    """Validate one raw record and return it in rewardkit's canonical form; raises :class:`DataError`.

    Besides types and keys: a response must be ``assistant`` turns only (``system``, ``user`` and ``tool``
    turns belong in the prompt), must not be blank (whitespace and :data:`INVISIBLE` characters only), and
    chosen must differ from rejected.
    """
    try:
        fmt = detect_format(record)
    except KeyError as e:
        raise DataError(loc, e.args[0], "missing (a preference row needs 'chosen' and 'rejected')") from None
    extras = {k: v for k, v in record.items() if k not in _PAIR_KEYS and k != "completion"}
    if fmt == "completion":
        prompt, conv = _prompt_messages(record.get("prompt"), loc, "prompt")
        completion = _response_messages(record["completion"], loc, "completion")
        return CompletionExample(prompt, completion, conv or isinstance(record["completion"], list), extras=extras)
    margin = _margin(record.get("margin"), loc)
    if fmt == "hh-rlhf":
        conv = True
        prompt, chosen, rejected = _split_hh(record, loc)
    elif fmt == "trl-conversational":
        conv = True
        prompt, chosen, rejected = _split_conversation(record, loc)
    elif fmt == "trl-implicit":
        conv = False
        c, r = _text(record["chosen"], loc, "chosen"), _text(record["rejected"], loc, "rejected")
        cut = _common_text_prefix(c, r)
        prompt = ({"role": "user", "content": c[:cut]},) if cut else ()
        chosen, rejected = reply(c[cut:]), reply(r[cut:])
    else:  # trl-explicit / rewardbench: plain strings; reward-bench prompts are a user turn
        conv = fmt == "rewardbench"
        prompt = ({"role": "user", "content": _text(record["prompt"], loc, "prompt", allow_empty=True)},)
        chosen = reply(_text(record["chosen"], loc, "chosen"))
        rejected = reply(_text(record["rejected"], loc, "rejected"))
    _check_pair(chosen, rejected, loc)
    return PreferenceExample(prompt, chosen, rejected, conv, fmt, margin, extras)


def reply(text: str) -> tuple[Message, ...]:
    """One assistant message."""
    return ({"role": "assistant", "content": text},)


def is_blank(text: str) -> bool:
    """True if ``text`` shows nothing: only whitespace and :data:`INVISIBLE` format characters (a
    zero-width space, joiner or BOM). Stops at the first visible character, so long texts cost nothing."""
    return _BLANK.match(text).end() == len(text)  # type: ignore[union-attr]  # [..]* always matches


def _empty_problem(text: str) -> str:
    if _HAS_INVISIBLE.search(text):
        return "is empty (only whitespace and invisible characters such as U+200B zero-width space)"
    return "is empty"


def _brief(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _text(value: Any, loc: Location, name: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise DataError(loc, name, f"expected a string, got {type(value).__name__}")
    if not allow_empty and is_blank(value):
        raise DataError(loc, name, _empty_problem(value))
    return value


def _messages(value: Any, loc: Location, name: str) -> tuple[Message, ...]:
    if not isinstance(value, list):
        raise DataError(loc, name, f"expected a list of messages, got {type(value).__name__}")
    out = []
    for i, m in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise DataError(loc, where, "a message must be an object with 'role' and 'content'")
        if not isinstance(m["role"], str) or m["role"] not in ROLES:
            raise DataError(loc, f"{where}.role",
                            f"unknown role {_brief(m['role'])} (expected one of {sorted(ROLES)})")
        if not isinstance(m["content"], str):
            raise DataError(loc, f"{where}.content", f"expected a string, got {type(m['content']).__name__}")
        out.append({"role": m["role"], "content": m["content"]})
    return tuple(out)


def _prompt_messages(value: Any, loc: Location, name: str) -> tuple[tuple[Message, ...], bool]:
    if value is None:
        return (), False
    if isinstance(value, list):
        return _messages(value, loc, name), True
    return ({"role": "user", "content": _text(value, loc, name, allow_empty=True)},), False


def _response_messages(value: Any, loc: Location, name: str) -> tuple[Message, ...]:
    msgs = _messages(value, loc, name) if isinstance(value, list) else reply(_text(value, loc, name))
    _check_response(msgs, loc, name)
    return msgs


def _check_response(msgs: tuple[Message, ...], loc: Location, name: str, *, first: int = 0,
                    transcript: bool = False) -> None:
    """A response is not blank and holds ``assistant`` turns only. ``first`` is the index of its first
    message in the input list (responses split off a shared dialogue start after the shared turns);
    ``transcript``: the input was one HH-RLHF string, so the field is named as a whole."""
    if not msgs or all(is_blank(m["content"]) for m in msgs):
        raise DataError(loc, name, _empty_problem("".join(m["content"][:64] for m in msgs)))
    for i, m in enumerate(msgs):
        if m["role"] in RESPONSE_ROLES:
            continue
        if transcript:
            raise DataError(loc, name, f"turn {first + i + 1} is a Human turn, but a response must be Assistant "
                            "turns only (the two transcripts differ before their last Human turn)")
        raise DataError(loc, f"{name}[{first + i}].role", f"a response must be assistant turns only, got "
                        f"{m['role']!r} ({m['role']} turns belong in the prompt)")


def _margin(value: Any, loc: Location) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(loc, "margin", f"expected a finite number, got {_brief(value)}")
    try:
        margin = float(value)
    except OverflowError:
        margin = math.inf
    if not math.isfinite(margin):
        got = f"an integer with {len(str(abs(value)))} digits" if isinstance(value, int) else repr(value)
        raise DataError(loc, "margin", f"expected a finite number, got {got}")
    return margin


def _check_pair(chosen: tuple[Message, ...], rejected: tuple[Message, ...], loc: Location) -> None:
    for name, msgs in (("chosen", chosen), ("rejected", rejected)):
        _check_response(msgs, loc, name)
    if chosen == rejected:
        raise DataError(loc, "rejected", "is identical to 'chosen' (the pair carries no preference)")


def _split_conversation(
    record: Mapping[str, Any], loc: Location
) -> tuple[tuple[Message, ...], tuple[Message, ...], tuple[Message, ...]]:
    """(prompt, chosen, rejected) of a conversational row: the given prompt, or the turns both share."""
    chosen = _messages(record["chosen"], loc, "chosen")
    rejected = _messages(record["rejected"], loc, "rejected")
    if record.get("prompt") is not None:
        prompt = _messages(record["prompt"], loc, "prompt")
        first = 0
    else:
        prompt, chosen, rejected = _split_shared_prefix(chosen, rejected, loc)
        first = len(prompt)
    _check_response(chosen, loc, "chosen", first=first)
    _check_response(rejected, loc, "rejected", first=first)
    return prompt, chosen, rejected


def _split_hh(record: Mapping[str, Any], loc: Location) -> tuple[tuple[Message, ...], ...]:
    prompt, chosen, rejected = _split_shared_prefix(
        _parse_hh(record["chosen"], loc, "chosen"), _parse_hh(record["rejected"], loc, "rejected"), loc
    )
    _check_response(chosen, loc, "chosen", first=len(prompt), transcript=True)
    _check_response(rejected, loc, "rejected", first=len(prompt), transcript=True)
    return prompt, chosen, rejected


def _split_shared_prefix(
    chosen: tuple[Message, ...], rejected: tuple[Message, ...], loc: Location
) -> tuple[tuple[Message, ...], tuple[Message, ...], tuple[Message, ...]]:
    """Prompt = the messages both dialogues share; the rest are the two responses."""
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    if n == len(chosen) == len(rejected):
        raise DataError(loc, "rejected", "is identical to 'chosen' (the pair carries no preference)")
    return chosen[:n], chosen[n:], rejected[n:]


def common_prefix_length(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings, compared in blocks (fast on long texts)."""
    n, end, block = 0, min(len(a), len(b)), 4096
    while n + block <= end and a[n:n + block] == b[n:n + block]:
        n += block
    while n < end and a[n] == b[n]:
        n += 1
    return n


_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")


def _common_text_prefix(a: str, b: str) -> int:
    """Length of the shared prefix of two strings, backed off to a whitespace boundary (also when one text
    is a prefix of the other, or equal): the prefix ends just after its last whitespace character."""
    n = common_prefix_length(a, b)
    m = _LAST_SPACE.search(a, 0, n)
    return m.end() if m else 0


def _parse_hh(text: Any, loc: Location, name: str) -> tuple[Message, ...]:
    """Split an HH-RLHF transcript into user/assistant messages."""
    text = _text(text, loc, name)
    messages: list[Message] = []
    rest = text
    if not rest.startswith(_HH_HUMAN):
        rest = "\n\n" + rest.lstrip("\n") if rest.lstrip().startswith("Human:") else rest
    if not rest.startswith(_HH_HUMAN):
        raise DataError(loc, name, "HH-RLHF transcript must start with '\\n\\nHuman:'")
    turns = list(_HH_TURN.finditer(rest))  # one pass: a long transcript costs its length, once
    for turn, nxt in zip(turns, [*turns[1:], None], strict=True):
        end = nxt.start() if nxt else len(rest)
        role = "user" if turn.group(1) == "Human" else "assistant"
        messages.append({"role": role, "content": rest[turn.end():end].strip()})
    if messages[-1]["role"] != "assistant":
        raise DataError(loc, name, "HH-RLHF transcript must end with an Assistant turn")
    return tuple(messages)


# ----------------------------------------------------------------------------- canonical output


def to_canonical(example: Example) -> dict[str, Any]:
    """The TRL-format record for ``example`` (conversational as messages, plain text as strings)."""
    out: dict[str, Any] = {}
    if example.prompt or example.conversational:  # a plain "" prompt would re-read as an empty user turn
        out["prompt"] = _canonical(example.prompt, example.conversational)
    if isinstance(example, CompletionExample):
        out["completion"] = _canonical(example.completion, example.conversational)
    else:
        out["chosen"] = _canonical(example.chosen, example.conversational)
        out["rejected"] = _canonical(example.rejected, example.conversational)
        if example.margin is not None:
            out["margin"] = example.margin
    out.update(example.extras)
    return out


def _canonical(msgs: tuple[Message, ...], conversational: bool) -> Any:
    return [dict(m) for m in msgs] if conversational else "".join(m["content"] for m in msgs)
