"""Files in and out: the one reader of every supported input file, and the atomic writers of outputs.

Reading (:func:`iter_records`, :func:`read_records`): ``.jsonl``, ``.json`` (a list of objects), either
optionally ``.gz``; ``.parquet``; folders written by ``datasets.Dataset.save_to_disk``. A record that cannot
be used is a :class:`DataError` naming file, line (or row) and field; a file that cannot be read at all
raises an :class:`~rewardkit.errors.InputError` naming it -- never a bare library error:

- text is UTF-8 (a byte-order mark at the start of the file is allowed) and valid Unicode: a lone
  surrogate written as a JSON escape (``"\\ud800"``) is refused;
- a JSON record nests at most :data:`MAX_DEPTH` levels, and its integers have at most 4300 digits
  (Python's ``sys.get_int_max_str_digits``); deeper or longer values are refused, naming the field.

Writing (:func:`atomic_writer`, :func:`atomic_write_text`, :func:`atomic_write_json`): a temporary file in
the target's folder, fsync, ``os.replace``; on any failure the temporary file is removed and the target is
untouched. New files get the mode ``open()`` would give them (``0o666`` less the umask: 0644 by default),
not ``mkstemp``'s 0600; :func:`make_readable` gives that mode to a file another library wrote.
A target that cannot be written raises ``InputError("PATH: cannot write: REASON")``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rewardkit.errors import InputError, MissingInputError

MAX_DEPTH = 100  # JSON nesting levels in one record (a conversational row needs 3)
_SURROGATE = re.compile("[\ud800-\udfff]")
_ARROW_BATCH = 1024


@dataclass(frozen=True)
class Location:
    """Where a record came from: a file and a 1-based line (jsonl) or a 0-based row (other files);
    neither for the file as a whole."""

    path: str
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        if self.row is not None:
            return f"{self.path}: row {self.row}"
        return self.path


class DataError(InputError, ValueError):
    """One bad record (or a file that cannot be read): where it is, which field, what is wrong."""

    def __init__(self, location: Location, field_name: str | None, message: str) -> None:
        self.location, self.field, self.message = location, field_name, message
        where = f"{location}: field '{field_name}'" if field_name else str(location)
        super().__init__(f"{where}: {message}")


def no_records_error(path: str | os.PathLike[str], what: str = "records") -> DataError:
    """The one error for an input without a single record (empty, blank lines only, zero rows)."""
    return DataError(Location(str(path)), None, f"no {what}")


# ----------------------------------------------------------------------------- reading


def iter_records(path: str | os.PathLike[str]) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    """Yield ``(location, record)`` for every record of a file, or ``(location, DataError)`` for a record
    that cannot be used (bad JSON, not an object, not UTF-8, a lone surrogate, nested deeper than
    :data:`MAX_DEPTH`, an integer too long to read): such a record can be skipped, the rest still read.

    A file that cannot be read at all raises instead: :class:`~rewardkit.errors.MissingInputError` (missing
    or unreadable) or :class:`DataError` naming the file (unsupported type, damaged gzip -- with the line
    where it broke --, not Parquet, not a datasets folder). Streams: memory does not grow with the number
    of records (a ``.json`` list is read whole). An empty file yields nothing; callers that need records
    raise :func:`no_records_error`.
    """
    p = Path(path)
    try:
        if not p.exists():  # may itself be refused: a folder on the way without search permission
            raise MissingInputError(f"{p}: no such file or folder")
        yield from _reader(p)
    except InputError:
        raise
    except PermissionError as e:
        raise MissingInputError(f"{p}: cannot read: {e.strerror or e}") from None
    except OSError as e:
        raise DataError(Location(str(p)), None, f"cannot read: {e.strerror or e}") from None


def read_records(path: str | os.PathLike[str], *, limit: int | None = None,
                 what: str = "records") -> list[tuple[Location, dict[str, Any]]]:
    """The records of a small input read whole (a prompts file, verifier items), with their locations.

    Same files and rules as :func:`iter_records`, but strict: the first unusable record raises its
    :class:`DataError`, and a file without records raises ``DataError("FILE: no <what>")``. Stops after
    ``limit`` records if given.
    """
    out: list[tuple[Location, dict[str, Any]]] = []
    for loc, record in iter_records(path):
        if isinstance(record, DataError):
            raise record
        out.append((loc, record))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise no_records_error(path, what)
    return out


def _reader(p: Path) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    if p.is_dir():
        return _iter_folder(p)
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(".jsonl"):
        return _iter_jsonl(p)
    if name.endswith(".json"):
        return _iter_json_array(p)
    if name.endswith(".parquet") and not p.name.lower().endswith(".gz"):
        return _iter_parquet(p)
    raise DataError(Location(str(p)), None,
                    "unsupported file type; use .jsonl, .json (optionally .gz), .parquet or a datasets folder")


def _open_binary(p: Path) -> Any:
    return gzip.open(p, "rb") if p.name.lower().endswith(".gz") else open(p, "rb")


def _lines(p: Path) -> Iterator[bytes]:
    """The raw lines of a file, gunzipped if it ends in ``.gz``; damaged gzip data raises a DataError
    naming the line where it broke (the lines before it were read)."""
    n = 0
    try:
        with _open_binary(p) as f:
            for raw in f:
                n += 1
                yield raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        loc = Location(str(p), line=n + 1) if n else Location(str(p))
        if isinstance(e, EOFError):
            problem = "the compressed data ends early (the .gz file is truncated)"
        elif isinstance(e, gzip.BadGzipFile) and n == 0:
            problem = f"not gzip data, though the name ends in .gz ({e})"
        else:
            problem = f"damaged gzip data ({e})"
        raise DataError(loc, None, problem) from None


def _decode(raw: bytes, loc: Location, *, first: bool) -> str | DataError:
    """UTF-8 text (a byte-order mark at the start of the file is allowed and dropped)."""
    try:
        return raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as e:
        utf16 = first and raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        hint = " -- the file looks like UTF-16; save it as UTF-8" if utf16 else ""
        return DataError(loc, None, f"not valid UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r}){hint}")


def _iter_jsonl(p: Path) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    for i, raw in enumerate(_lines(p), start=1):
        loc = Location(str(p), line=i)
        text = _decode(raw, loc, first=i == 1)
        if isinstance(text, DataError):
            yield loc, text
            continue
        if not text or text.isspace():
            continue
        yield loc, _json_object(text.rstrip("\r\n"), loc)  # rstrip: a cut-off line's column is on that line


def _iter_json_array(p: Path) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    loc = Location(str(p), line=1)
    raw = b"".join(_lines(p))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        yield loc, DataError(loc, None, f"not valid UTF-8 (byte offset {e.start})")
        return
    try:
        data = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        bad = Location(str(p), line=e.lineno)
        yield bad, DataError(bad, None, f"bad JSON: {e.msg} at column {e.colno}")
        return
    except RecursionError:
        yield loc, DataError(loc, None, f"bad JSON: nested more than {MAX_DEPTH} levels deep")
        return
    if not isinstance(data, list):
        yield loc, DataError(loc, None, "a .json file must hold a list of records (use .jsonl for one per line)")
        return
    for i, record in enumerate(data):
        rloc = Location(str(p), row=i)
        yield rloc, _checked_object(record, rloc)


def _json_object(text: str, loc: Location) -> dict[str, Any] | DataError:
    try:
        record = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        return DataError(loc, None, f"bad JSON: {e.msg} at column {e.colno}")
    except RecursionError:
        return DataError(loc, None, f"bad JSON: nested more than {MAX_DEPTH} levels deep")
    return _checked_object(record, loc)


def _checked_object(record: Any, loc: Location) -> dict[str, Any] | DataError:
    if not isinstance(record, dict):
        return DataError(loc, None, f"expected a JSON object, got {type(record).__name__}")
    problem = unusable_value(record)
    return DataError(loc, *problem) if problem else record


class _LongInteger:
    """A JSON integer with more digits than Python converts (``sys.get_int_max_str_digits``, 4300 by
    default): kept as a marker so validation can name its field instead of failing the whole line."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int | _LongInteger:
    try:
        return int(text)
    except ValueError:
        return _LongInteger(len(text.lstrip("-")))


def unusable_value(record: dict[str, Any]) -> tuple[str | None, str] | None:
    """``(field, problem)`` for the first value of a parsed JSON record that rewardkit cannot carry through
    (nested deeper than :data:`MAX_DEPTH`, an integer too long to read, a lone surrogate in a text or a
    key), or None. One iterative pass; a text is only searched when it is not ASCII."""
    stack: list[tuple[Any, str, int]] = [(record, "", 0)]
    while stack:
        value, name, depth = stack.pop()
        problem = None
        if depth > MAX_DEPTH:
            problem = f"nested more than {MAX_DEPTH} levels deep"
        elif isinstance(value, str) and _has_surrogate(value):
            problem = _surrogate_problem(value)
        elif isinstance(value, _LongInteger):
            problem = f"an integer with {value.digits} digits is too long to read (at most 4300)"
        elif isinstance(value, dict):
            for key in value:
                if _has_surrogate(key):
                    where = f"{name}.{key!a}" if name else ascii(key)
                    return _short(where), f"the key {_surrogate_problem(key)}"
            stack.extend((v, f"{name}.{k}" if name else k, depth + 1) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, f"{name}[{i}]", depth + 1) for i, v in reversed(list(enumerate(value))))
        if problem:
            return _short(name) if name else None, problem
    return None


def _short(name: str, limit: int = 80) -> str:
    """A field path short enough for one error line (a deep path is cut, with its start kept)."""
    return name if len(name) <= limit else f"{name[:limit]}..."


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _surrogate_problem(text: str) -> str:
    m = _SURROGATE.search(text)
    assert m is not None
    return (f"contains a lone surrogate (U+{ord(m.group()):04X} at character {m.start()}: a JSON escape "
            "such as \\ud800 without its pair), which is not valid Unicode text")


def _iter_parquet(p: Path) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    with open(p, "rb") as f:
        try:
            batches = pq.ParquetFile(f).iter_batches(batch_size=_ARROW_BATCH)
            for batch in batches:
                for record in batch.to_pylist():
                    yield Location(str(p), row=row), record
                    row += 1
        except (pa.ArrowException, OSError) as e:
            where = Location(str(p), row=row) if row else Location(str(p))
            raise DataError(where, None, f"not a readable Parquet file ({e})") from None


def _iter_folder(p: Path) -> Iterator[tuple[Location, dict[str, Any] | DataError]]:
    import pyarrow as pa

    if not any((p / name).is_file() for name in ("state.json", "dataset_dict.json")):
        raise DataError(Location(str(p)), None, "not a folder written by datasets' save_to_disk "
                        "(no state.json or dataset_dict.json)")
    row = 0
    try:
        for record in _load_disk_dataset(p):
            yield Location(str(p), row=row), record
            row += 1
    except (InputError, PermissionError):
        raise
    except (pa.ArrowException, OSError) as e:
        where = Location(str(p), row=row) if row else Location(str(p))
        raise DataError(where, None, f"damaged datasets folder ({e})") from None


def _load_disk_dataset(p: Path) -> Any:
    import datasets

    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise DataError(Location(str(p)), None,
                            f"a DatasetDict with splits {list(ds)}; pass the split folder, e.g. {p}/train")
        ds = next(iter(ds.values()))
    return ds


# ----------------------------------------------------------------------------- writing


@contextmanager
def atomic_writer(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[IO[Any]]:
    """Write ``path`` all at once: yields a file open on a temporary file beside it (text, UTF-8, unless
    ``binary``); when the block ends, the data is flushed, fsynced and renamed onto ``path``. If the block
    raises, or anything fails, the temporary file is removed and ``path`` is left as it was.

    Raises ``InputError("PATH: cannot write: REASON")`` when the folder or file cannot be written (no
    permission, read-only, disk full, a folder in the way) -- including an :class:`OSError` raised by a
    ``write`` inside the block. Other exceptions from the block pass through unchanged.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(target)
    except OSError as e:
        raise _cannot_write(target, e) from e
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        left = _remove_quietly(tmp)
        if isinstance(e, OSError) and not isinstance(e, InputError) and e.filename in (None, str(tmp)):
            raise _cannot_write(target, e, left) from e
        if left:
            e.add_note(left)
        raise
    _fsync_folder(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2,
                      default: Callable[[Any], Any] | None = None) -> None:
    """Write ``obj`` as JSON (UTF-8, non-ASCII kept readable, a final newline) to ``path`` atomically;
    ``default`` as in :func:`json.dumps` (e.g. ``str`` for paths). The object is serialised first, so an
    unserialisable object fails before any file is touched."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=default) + "\n")


def make_readable(path: str | os.PathLike[str]) -> None:
    """Give an existing file the mode a new file gets (``0o666`` less the umask: 0644 by default), e.g.
    after a library that writes 0600 files (safetensors' ``save_file``)."""
    try:
        os.chmod(path, 0o666 & ~current_umask())
    except OSError as e:
        raise InputError(f"{path}: cannot set its permissions: {e.strerror or e}") from e


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``);
    elsewhere set and restored at once under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new, empty temporary file beside ``target``, created like ``open(..., "w")`` creates files (mode
    ``0o666`` less the umask), with a random name so concurrent writers never share one."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _cannot_write(target: Path, e: OSError, note: str = "") -> InputError:
    reason = e.strerror or str(e)
    return InputError(f"{target}: cannot write: {reason}" + (f" ({note})" if note else ""))


def _remove_quietly(tmp: Path) -> str:
    """Remove ``tmp``; say so if it could not be removed (e.g. its folder became read-only)."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError as e:
        return f"the temporary file {tmp} could not be removed: {e.strerror or e}"
    return ""


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
