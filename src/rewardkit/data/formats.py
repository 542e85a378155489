"""Read preference and completion records in every format users have, with errors that name the spot.

Supported row formats (detected per row, see :func:`detect_format`):

- ``trl-explicit``        ``{"prompt": str, "chosen": str, "rejected": str}``
- ``trl-implicit``        ``{"chosen": str, "rejected": str}`` -- the shared prefix is the prompt
- ``trl-conversational``  the same keys as lists of ``{"role", "content"}`` messages (prompt optional)
- ``hh-rlhf``             ``{"chosen", "rejected"}`` whole ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` transcripts
- ``rewardbench``         reward-bench v1 rows ``prompt, chosen, rejected, subset, id, ...`` (a chat turn)
- ``completion``          TRL unpaired ``{"prompt", "completion"}`` (scoring only)

Optional columns: ``margin`` (float, Bradley--Terry margin). Every other column is kept as an extra.
Files: ``.jsonl``, ``.json`` (a list of objects), either optionally ``.gz``; ``.parquet``; and folders
written by ``datasets.Dataset.save_to_disk``.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Message = dict[str, str]
ROLES = frozenset({"system", "user", "assistant", "tool"})
FORMATS = ("trl-explicit", "trl-implicit", "trl-conversational", "hh-rlhf", "rewardbench", "completion")
_PAIR_KEYS = frozenset({"prompt", "chosen", "rejected", "margin"})
_HH_HUMAN, _HH_ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


@dataclass(frozen=True)
class Location:
    """Where a record came from: a file and a 1-based line (jsonl) or a 0-based row (other files)."""

    path: str
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        return f"{self.path}: row {self.row}"


class DataError(ValueError):
    """One bad record: where it is, which field, what is wrong."""

    def __init__(self, location: Location, field_name: str | None, message: str) -> None:
        self.location, self.field, self.message = location, field_name, message
        where = f"{location}: field '{field_name}'" if field_name else str(location)
        super().__init__(f"{where}: {message}")


class DataValidationError(ValueError):
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


# ----------------------------------------------------------------------------- raw records


def iter_records(path: str | os.PathLike[str]) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    """Yield ``(location, record)`` for every record of a file, or ``(location, DataError)`` for a record
    that cannot be read (bad JSON, not an object, not UTF-8). Streams: memory does not grow with size."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        yield from _iter_arrow_rows(p, _load_disk_dataset(p))
        return
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(".jsonl"):
        yield from _iter_jsonl(p)
    elif name.endswith(".json"):
        yield from _iter_json_array(p)
    elif name.endswith(".parquet"):
        import datasets

        yield from _iter_arrow_rows(p, datasets.load_dataset("parquet", data_files=str(p), split="train"))
    else:
        raise ValueError(f"{p}: unsupported file type; use .jsonl, .json, .parquet (optionally .gz) or a folder")


def _open_binary(p: Path) -> Any:
    return gzip.open(p, "rb") if p.name.lower().endswith(".gz") else open(p, "rb")


def _iter_jsonl(p: Path) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    with _open_binary(p) as f:
        for i, raw in enumerate(f, start=1):
            loc = Location(str(p), line=i)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield loc, DataError(loc, None, f"not valid UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})")
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text.rstrip("\r\n"))  # so a cut-off line's column is on that line
            except json.JSONDecodeError as e:
                yield loc, DataError(loc, None, f"bad JSON: {e.msg} at column {e.colno}")
                continue
            if not isinstance(record, dict):
                yield loc, DataError(loc, None, f"expected a JSON object, got {type(record).__name__}")
                continue
            yield loc, record


def _iter_json_array(p: Path) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    loc = Location(str(p), line=1)
    with _open_binary(p) as f:
        try:
            data = json.loads(f.read().decode("utf-8"))
        except UnicodeDecodeError as e:
            yield loc, DataError(loc, None, f"not valid UTF-8 (byte offset {e.start})")
            return
        except json.JSONDecodeError as e:
            bad = Location(str(p), line=e.lineno)
            yield bad, DataError(bad, None, f"bad JSON: {e.msg} at column {e.colno}")
            return
    if not isinstance(data, list):
        yield loc, DataError(loc, None, "a .json file must hold a list of records (use .jsonl for one per line)")
        return
    for i, record in enumerate(data):
        rloc = Location(str(p), row=i)
        if isinstance(record, dict):
            yield rloc, record
        else:
            yield rloc, DataError(rloc, None, f"expected a JSON object, got {type(record).__name__}")


def _load_disk_dataset(p: Path) -> Any:
    import datasets

    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise ValueError(f"{p}: a DatasetDict with splits {list(ds)}; pass the split folder, e.g. {p}/train")
        ds = next(iter(ds.values()))
    return ds


def _iter_arrow_rows(p: Path, ds: Any) -> Iterator[tuple[Location, dict[str, Any]]]:
    for i, row in enumerate(ds):
        yield Location(str(p), row=i), row


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
    """Validate one raw record and return it in rewardkit's canonical form; raises :class:`DataError`."""
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
        prompt, chosen, rejected = _split_shared_prefix(
            _parse_hh(record["chosen"], loc, "chosen"), _parse_hh(record["rejected"], loc, "rejected"), loc
        )
        conv = True
    elif fmt == "trl-conversational":
        conv = True
        chosen = _messages(record["chosen"], loc, "chosen")
        rejected = _messages(record["rejected"], loc, "rejected")
        if record.get("prompt") is not None:
            prompt = _messages(record["prompt"], loc, "prompt")
        else:
            prompt, chosen, rejected = _split_shared_prefix(chosen, rejected, loc)
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


def _text(value: Any, loc: Location, name: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise DataError(loc, name, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(loc, name, "is empty")
    return value


def _messages(value: Any, loc: Location, name: str) -> tuple[Message, ...]:
    if not isinstance(value, list):
        raise DataError(loc, name, f"expected a list of messages, got {type(value).__name__}")
    out = []
    for i, m in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise DataError(loc, where, "a message must be an object with 'role' and 'content'")
        if m["role"] not in ROLES:
            raise DataError(loc, f"{where}.role", f"unknown role {m['role']!r} (expected one of {sorted(ROLES)})")
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
    if not msgs or not any(m["content"].strip() for m in msgs):
        raise DataError(loc, name, "is empty")
    return msgs


def _margin(value: Any, loc: Location) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(loc, "margin", f"expected a finite number, got {value!r}")
    return float(value)


def _check_pair(chosen: tuple[Message, ...], rejected: tuple[Message, ...], loc: Location) -> None:
    for name, msgs in (("chosen", chosen), ("rejected", rejected)):
        if not msgs or not any(m["content"].strip() for m in msgs):
            raise DataError(loc, name, "is empty")
    if chosen == rejected:
        raise DataError(loc, "rejected", "is identical to 'chosen' (the pair carries no preference)")


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


def _common_text_prefix(a: str, b: str) -> int:
    """Length of the shared prefix of two strings, backed off to a whitespace boundary."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    while n > 0 and not a[n - 1].isspace():  # also when one text is a prefix of the other (or equal)
        n -= 1
    return n


def _parse_hh(text: Any, loc: Location, name: str) -> tuple[Message, ...]:
    """Split an HH-RLHF transcript into user/assistant messages."""
    text = _text(text, loc, name)
    messages: list[Message] = []
    rest = text
    if not rest.startswith(_HH_HUMAN):
        rest = "\n\n" + rest.lstrip("\n") if rest.lstrip().startswith("Human:") else rest
    if not rest.startswith(_HH_HUMAN):
        raise DataError(loc, name, "HH-RLHF transcript must start with '\\n\\nHuman:'")
    while rest:
        role, marker = ("user", _HH_HUMAN) if rest.startswith(_HH_HUMAN) else ("assistant", _HH_ASSISTANT)
        body = rest[len(marker):]
        nxt = [i for i in (body.find(_HH_HUMAN), body.find(_HH_ASSISTANT)) if i >= 0]
        end = min(nxt) if nxt else len(body)
        messages.append({"role": role, "content": body[:end].strip()})
        rest = body[end:]
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
