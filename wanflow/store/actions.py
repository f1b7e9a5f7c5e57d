"""The action cache: what each task key produced (key -> output digest + provenance).

Records live in SQLite (`results.db`). A record is small; the output itself is an object
of the content store. Records read back are checked like input (a cache may have been
restored from elsewhere): a row that is not well-formed is treated as absent.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .fs import StrPath
from .sqlite import Database

_SQL_CHUNK = 500  # keys per `IN (...)` query
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key     TEXT PRIMARY KEY,
    task    TEXT NOT NULL,
    digest  TEXT NOT NULL,
    size    INTEGER NOT NULL,
    meta    TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_digest ON results(digest);
"""
_COLS = "key, task, digest, size, meta, created"
_UPSERT = ("INSERT INTO results (key, task, digest, size, meta, created) "
           "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET task=excluded.task, "
           "digest=excluded.digest, size=excluded.size, meta=excluded.meta, "
           "created=excluded.created")


@dataclass(frozen=True)
class Result:
    """What a finished task produced: its key, its output object and where it came from."""

    key: str  # sha256 hex of the task's canonical key material
    task: str  # task id, e.g. "gen:chase.wide#1"
    digest: str  # sha256 hex of the output object
    size: int
    meta: dict[str, Any] = field(default_factory=dict, hash=False)  # provenance (JSON)
    created: float = field(default_factory=time.time)


def _row(row: tuple[Any, ...]) -> Result | None:
    """A row as read back: SQLite's values are whatever was stored, so each is checked."""
    key, task, digest, size, meta, created = row
    try:
        data = json.loads(meta)
    except (TypeError, ValueError):
        return None
    if not (isinstance(task, str) and isinstance(digest, str) and _HEX64.match(digest)
            and isinstance(size, int) and size >= 0 and isinstance(data, dict)
            and isinstance(created, (int, float))):
        return None
    return Result(key=key, task=task, digest=digest, size=size, meta=data, created=created)


def _params(r: Result) -> tuple[str, str, str, int, str, float]:
    if not _HEX64.match(r.digest):
        raise ValueError(f"not a sha256 hex digest: {r.digest!r}")
    return (r.key, r.task, r.digest, int(r.size),
            json.dumps(r.meta, sort_keys=True, ensure_ascii=False, default=str),
            float(r.created))


class ActionCache:
    """Result records by key, in one SQLite file (opened on first use)."""

    def __init__(self, path: StrPath) -> None:
        self.db = Database(path, _SCHEMA, what="the result records")

    def get(self, key: str) -> Result | None:
        with self.db.sql("reading a result record") as db:
            row = db.execute(f"SELECT {_COLS} FROM results WHERE key = ?", (key,)).fetchone()
        return _row(row) if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, Result]:
        """The records of those keys that have one (batched: fast for 10,000 keys)."""
        wanted = list(dict.fromkeys(keys))
        rows: list[tuple[Any, ...]] = []
        with self.db.sql("reading result records") as db:
            for i in range(0, len(wanted), _SQL_CHUNK):
                chunk = wanted[i:i + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows.extend(db.execute(
                    f"SELECT {_COLS} FROM results WHERE key IN ({marks})", chunk))
        out = {}
        for row in rows:
            result = _row(row)
            if result is not None:
                out[result.key] = result
        return out

    def put(self, result: Result) -> None:
        """Insert or replace a record; durable when this returns."""
        params = _params(result)
        with self.db.sql("writing a result record") as db:
            db.execute(_UPSERT, params)

    def put_many(self, results: Iterable[Result]) -> None:
        """Insert or replace many records in one transaction."""
        params = [_params(r) for r in results]
        with self.db.transaction("writing result records") as db:
            db.executemany(_UPSERT, params)

    def delete(self, key: str) -> None:
        with self.db.sql("deleting a result record") as db:
            db.execute("DELETE FROM results WHERE key = ?", (key,))

    def all(self) -> list[Result]:
        with self.db.sql("reading result records") as db:
            rows = db.execute(f"SELECT {_COLS} FROM results ORDER BY task, key").fetchall()
        return [r for r in map(_row, rows) if r is not None]

    def delete_by_digests(self, digests: list[str]) -> None:
        """Forget every record whose output is one of `digests`."""
        with self.db.transaction("removing result records") as db:
            for i in range(0, len(digests), _SQL_CHUNK):
                chunk = digests[i:i + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM results WHERE digest IN ({marks})", chunk)

    def close(self) -> None:
        self.db.close()
