"""Per-item score cache: an interrupted evaluation resumes without rescoring what it already scored.

Scores live in one SQLite file (``DIR/scores.sqlite``), keyed by a *namespace* -- a hash of everything
that changes a score: the scorer kind, the model's file fingerprint, max length, dtype and options --
and by a hash of the exact inputs (prompt and response messages, or the two responses a judge
compares). Each scored chunk is committed at once, so a killed run loses at most one chunk.
Reading a score back gives the identical float32 value that was computed. What a scorer gives beside the
reward (its uncertainty, its objectives) is kept too, as JSON in the ``extra`` column (a cache written
before that column existed gains it, empty, when opened).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

CACHE_FILE = "scores.sqlite"


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ScoreCache:
    """Scores of one scorer identity (``namespace``) under ``folder``; use as a context manager."""

    def __init__(self, folder: str | Path, identity: Mapping[str, Any]) -> None:
        self.path = Path(folder) / CACHE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.namespace = stable_hash(dict(identity))
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (ns TEXT NOT NULL, key TEXT NOT NULL, "
                         "score REAL NOT NULL, truncated INTEGER NOT NULL, extra TEXT, PRIMARY KEY (ns, key))")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(scores)")}
        if "extra" not in columns:  # a cache from before the column
            self._db.execute("ALTER TABLE scores ADD COLUMN extra TEXT")
        self._db.execute("CREATE TABLE IF NOT EXISTS identities (ns TEXT PRIMARY KEY, identity TEXT NOT NULL)")
        self._db.execute("INSERT OR IGNORE INTO identities VALUES (?, ?)",
                         (self.namespace, json.dumps(dict(identity), sort_keys=True, default=str)))
        self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[float, bool]]:
        """The cached ``(score, truncated)`` of those ``keys`` that are present."""
        out: dict[str, tuple[float, bool]] = {}
        for start in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, score, truncated FROM scores WHERE ns = ? AND key IN ({marks})",
                                    [self.namespace, *chunk])
            out.update({k: (float(s), bool(t)) for k, s, t in rows})
        return out

    def put_many(self, rows: Iterable[tuple[str, float, bool]], extras: Mapping[str, Any] | None = None) -> None:
        """Store ``(key, score, truncated)`` rows (with ``extras[key]``, any JSON value, where given) and commit."""
        extras = extras or {}
        self._db.executemany(
            "INSERT OR REPLACE INTO scores (ns, key, score, truncated, extra) VALUES (?, ?, ?, ?, ?)",
            [(self.namespace, k, float(s), int(bool(t)), json.dumps(extras[k]) if k in extras else None)
             for k, s, t in rows])
        self._db.commit()

    def get_extras(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored extras of those ``keys`` that have them."""
        out: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, extra FROM scores WHERE ns = ? AND extra IS NOT NULL AND key IN "
                                    f"({marks})", [self.namespace, *chunk])
            out.update({k: json.loads(e) for k, e in rows})
        return out

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM scores WHERE ns = ?", (self.namespace,)).fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
