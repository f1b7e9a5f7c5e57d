"""The one way the store opens SQLite: WAL, a busy timeout, synchronous=FULL, one
connection per object shared by threads under a lock, and errors as `StoreError`.

Writes are durable when they return; several processes may open the same file.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import StoreError
from .fs import StrPath, storage_error


class Database:
    """A SQLite file with a schema, opened on first use (so that merely constructing the
    owner of a database costs nothing on paths that never read it)."""

    def __init__(self, path: StrPath, schema: str, *, busy_timeout: float = 30.0,
                 what: str = "the result records", lazy: bool = True) -> None:
        self.path = Path(path).absolute()
        self.what = what
        self._schema = schema
        self._timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        if not lazy:
            with self._lock:
                self._open()

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._closed:
                raise StoreError(f"{self.what} at {self.path} were closed")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                       check_same_thread=False)
            except (OSError, sqlite3.Error) as exc:
                raise storage_error(exc, f"opening {self.what}", self.path) from exc
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.executescript(self._schema)
            except sqlite3.Error as exc:
                conn.close()
                raise self.open_error(exc) from exc
            self._conn = conn
        return self._conn

    def open_error(self, exc: sqlite3.Error) -> StoreError:
        """The error to raise when the file exists but cannot be used (a subclass may say
        more, e.g. the journal explains what losing it means)."""
        return storage_error(exc, f"opening {self.what}", self.path)

    @contextlib.contextmanager
    def sql(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; sqlite errors become StoreError naming `action`."""
        with self._lock:
            conn = self._open()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise storage_error(exc, action, self.path) from exc

    @contextlib.contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """`sql`, inside BEGIN IMMEDIATE … COMMIT (rolled back on any error)."""
        with self.sql(action) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None
