"""The journal of remote tasks in flight: SQLite (WAL) at `<cache>/journal.db` (DESIGN §3).

The rule it exists for: a submitted remote task id is committed *before* the first poll, so
a run that was killed re-attaches to the task instead of paying for it twice. States::

    submitting -> submitted  -> finished  -> done   (output stored; may be forgotten)
        |             |             |
        +-> failed    +-> failed    +-> expired   (finished, but the video can no longer be
    uncertain                                      fetched: a person decides, --resubmit)
    (a submit whose outcome is unknown: never resubmit blindly; a person decides)

Only paid backends keep a journal: a free task cut short is simply done again.

`finished` keeps the backend's finished data (URLs, usage...) so a failed download is
retried without generating again. `run_times` remembers how long finished tasks of each
kind ran (the backend names the kinds), so later runs poll when a task is due. Writes are
synchronous=FULL: durable when they return.
One connection per Journal, shared by threads under a lock; several processes may open the
same file (WAL + busy timeout).
"""
from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from ..errors import StoreError
from .fs import StrPath
from .sqlite import Database

STATES = ("submitting", "submitted", "finished", "done", "failed", "uncertain", "expired")
LIVE_STATES = ("submitted", "finished")


@dataclass(frozen=True)
class JournalEntry:
    key: str
    task: str
    backend: str
    remote_id: str  # "" for an uncertain submit (no id was received)
    request_id: str | None
    submitted_at: float
    state: str  # submitted | finished | done | failed | uncertain
    finished: dict[str, Any] | None = field(default=None, hash=False)   # the backend's data
    error: str | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    key          TEXT PRIMARY KEY,
    task         TEXT NOT NULL,
    backend      TEXT NOT NULL,
    remote_id    TEXT NOT NULL,
    request_id   TEXT,
    submitted_at REAL NOT NULL,
    state        TEXT NOT NULL,
    finished     TEXT,
    error        TEXT,
    updated_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_backend_state ON journal(backend, state);
CREATE TABLE IF NOT EXISTS run_times (
    kind         TEXT NOT NULL,
    seconds      REAL NOT NULL,
    finished_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS run_times_kind ON run_times(kind, finished_at);
"""
RUN_TIMES_KEPT = 50   # per kind: the schedule reads the newest few; the rest is pruned
_COLS = "key, task, backend, remote_id, request_id, submitted_at, state, finished, error"
_UPSERT = (f"INSERT INTO journal ({_COLS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
           "ON CONFLICT(key) DO UPDATE SET task=excluded.task, backend=excluded.backend, "
           "remote_id=excluded.remote_id, request_id=excluded.request_id, "
           "submitted_at=excluded.submitted_at, state=excluded.state, "
           "finished=excluded.finished, error=excluded.error, updated_at=excluded.updated_at")


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    key, task, backend, remote_id, request_id, submitted_at, state, finished, error = row
    return JournalEntry(key=key, task=task, backend=backend, remote_id=remote_id,
                        request_id=request_id, submitted_at=submitted_at, state=state,
                        finished=json.loads(finished) if finished is not None else None,
                        error=error)


class _JournalDb(Database):
    def open_error(self, exc: sqlite3.Error) -> StoreError:
        if "not a database" in str(exc) or "malformed" in str(exc):
            return StoreError(
                f"the journal {self.path} is corrupt ({exc}); move it aside to continue, "
                "but first check the provider's console for tasks still running: the "
                "journal is what lets wanflow re-attach to them")
        return super().open_error(exc)


class Journal:
    def __init__(self, path: StrPath, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path).absolute()
        # Opened at once: a run must know before submitting anything that it can journal.
        self._db = _JournalDb(self.path, _SCHEMA, busy_timeout=busy_timeout,
                              what="the journal", lazy=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def _sql(self, action: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._db.sql(action)

    def _upsert(self, action: str, key: str, task: str, backend: str, remote_id: str,
                request_id: str | None, submitted_at: float | None, state: str,
                finished: dict[str, Any] | None = None, error: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown journal state {state!r}")
        now = time.time()
        row = (key, task, backend, remote_id, request_id,
               now if submitted_at is None else float(submitted_at), state,
               None if finished is None else json.dumps(finished, sort_keys=True), error, now)
        with self._sql(action) as db:
            db.execute(_UPSERT, row)

    def record_submit(self, key: str, task: str, backend: str, remote_id: str,
                      request_id: str | None, submitted_at: float | None = None) -> None:
        """Record a submitted remote task; committed (fsync'ed) when this returns."""
        if not remote_id:
            raise ValueError("record_submit needs the remote task id")
        self._upsert("recording a submitted task", key, task, backend, remote_id, request_id,
                     submitted_at, "submitted")

    def record_intent(self, key: str, task: str, backend: str) -> None:
        """Record that a submit is about to be sent. If the process dies before
        `record_submit`, the next run knows a task may exist that it has no id for."""
        self._upsert("recording a submit about to be sent", key, task, backend, "", None, None,
                     "submitting")

    def record_uncertain(self, key: str, task: str, backend: str, note: str) -> None:
        """Record a submit whose outcome is unknown, so the next run does not resubmit
        blindly. `note` says what happened (kept as `error`); `remote_id` is ""."""
        self._upsert("recording an uncertain submit", key, task, backend, "", None, None,
                     "uncertain", error=note)

    def _set_state(self, action: str, key: str, sql: str, params: tuple[str, ...]) -> bool:
        with self._sql(action) as db:
            cur = db.execute(f"UPDATE journal SET {sql}, updated_at = ? WHERE key = ?",
                             (*params, time.time(), key))
            return cur.rowcount > 0

    def mark_finished(self, key: str, finished: dict[str, Any]) -> bool:
        """The remote task succeeded; keep its data so the output can be (re)downloaded.
        Returns False if the key is not in the journal."""
        return self._set_state("recording a finished task", key,
                               "state = 'finished', finished = ?, error = NULL",
                               (json.dumps(finished, sort_keys=True),))

    def mark_done(self, key: str) -> bool:
        """The output is stored; the entry is no longer live."""
        return self._set_state("recording a stored output", key, "state = 'done'", ())

    def mark_expired(self, key: str, error: str) -> bool:
        """The task finished but its result can no longer be fetched: a person decides
        whether to pay for it again (`--resubmit`)."""
        return self._set_state("recording an expired result", key,
                               "state = 'expired', error = ?", (str(error),))

    def mark_failed(self, key: str, error: str) -> bool:
        return self._set_state("recording a failed task", key,
                               "state = 'failed', error = ?", (str(error),))

    def get(self, key: str) -> JournalEntry | None:
        with self._sql("reading the journal") as db:
            row = db.execute(f"SELECT {_COLS} FROM journal WHERE key = ?", (key,)).fetchone()
        return _entry(row) if row else None

    def live(self, backend: str, *, max_age: float = 86400.0,
             now: float | None = None) -> dict[str, JournalEntry]:
        """Entries of `backend` still submitted or finished, submitted less than `max_age`
        seconds ago (providers forget tasks and results after about a day)."""
        now = time.time() if now is None else now
        with self._sql("reading the journal") as db:
            rows = db.execute(
                f"SELECT {_COLS} FROM journal WHERE backend = ? AND state IN (?, ?) "
                "AND submitted_at >= ? ORDER BY submitted_at, key",
                (backend, *LIVE_STATES, now - max_age)).fetchall()
        return {row[0]: _entry(row) for row in rows}

    def entries(self, *, backend: str | None = None,
                states: Iterable[str] | None = None) -> list[JournalEntry]:
        """All entries, optionally of one backend and/or in some states (for `status`)."""
        sql, params = f"SELECT {_COLS} FROM journal WHERE 1", []
        if backend is not None:
            sql += " AND backend = ?"
            params.append(backend)
        if states is not None:
            states = list(states)
            sql += f" AND state IN ({','.join('?' * len(states))})"
            params.extend(states)
        with self._sql("reading the journal") as db:
            rows = db.execute(sql + " ORDER BY submitted_at, key", params).fetchall()
        return [_entry(row) for row in rows]

    def forget(self, key: str) -> None:
        with self._sql("updating the journal") as db:
            db.execute("DELETE FROM journal WHERE key = ?", (key,))

    def record_run(self, kind: str, seconds: float, *, now: float | None = None) -> None:
        """Remember that a task of `kind` ran `seconds`, submit to success."""
        if not (math.isfinite(seconds) and seconds > 0):
            return
        now = time.time() if now is None else now
        with self._sql("recording a run time") as db:
            db.execute("INSERT INTO run_times (kind, seconds, finished_at) VALUES (?, ?, ?)",
                       (kind, float(seconds), now))
            db.execute("DELETE FROM run_times WHERE kind = ? AND rowid NOT IN (SELECT rowid "
                       "FROM run_times WHERE kind = ? ORDER BY finished_at DESC LIMIT ?)",
                       (kind, kind, RUN_TIMES_KEPT))

    def run_seconds(self, kind: str, limit: int = 10) -> list[float]:
        """The most recent run times of `kind`, newest first."""
        with self._sql("reading run times") as db:
            rows = db.execute("SELECT seconds FROM run_times WHERE kind = ? "
                              "ORDER BY finished_at DESC, rowid DESC LIMIT ?",
                              (kind, int(limit))).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        self._db.close()


class NullJournal:
    """The journal of a free backend: nothing is recorded, nothing is in flight. A free
    task cut short is simply done again, so it can never be stuck on a dead record."""

    def get(self, key: str) -> None:
        return None

    def live(self, backend: str, **_: object) -> dict[str, JournalEntry]:
        return {}

    def entries(self, **_: object) -> list[JournalEntry]:
        return []

    def record_submit(self, *_: object, **__: object) -> None: ...
    def record_intent(self, *_: object, **__: object) -> None: ...
    def record_uncertain(self, *_: object, **__: object) -> None: ...
    def mark_finished(self, *_: object, **__: object) -> bool: return False
    def mark_done(self, *_: object, **__: object) -> bool: return False
    def mark_failed(self, *_: object, **__: object) -> bool: return False
    def mark_expired(self, *_: object, **__: object) -> bool: return False
    def forget(self, key: str) -> None: ...
    def record_run(self, *_: object, **__: object) -> None: ...
    def run_seconds(self, *_: object, **__: object) -> list[float]: return []
    def close(self) -> None: ...
