"""The content-addressed store and the result records (DESIGN §3).

Layout of a cache directory (by default `<spec dir>/.wanflow`)::

    objects/ab/cdef…   every output, named by the sha256 of its bytes, read-only
    tmp/               temporary files, renamed into objects/ once complete
    results.db         SQLite (WAL): task key -> output digest + provenance
    run.lock           flock'ed by the run that uses the cache; holds its pid
    journal.db         remote tasks in flight (see `wanflow.journal`)

Every write goes to a temporary file on the same filesystem, is fsync'ed and then renamed
into place, so a crash or a full disk never leaves a partial object or record. Objects are
not trusted: `verified_path` and `verify` re-hash them and remove any that are corrupt.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StoreError

CHUNK = 1 << 20  # bytes read at a time when hashing or copying
_SQL_CHUNK = 500  # keys per `IN (...)` query
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_OBJECT_MODE = 0o444  # objects are read-only; a hard-linked output cannot be edited in place
_STALE_TMP = 3600.0  # gc removes files in tmp/ older than this (seconds)
_CACHE_HINT = "or use --cache to pick another directory"


@dataclass(frozen=True)
class Result:
    """What a finished task produced: its key, its output object and where it came from."""

    key: str  # sha256 hex of the task's canonical request
    task: str  # task id, e.g. "gen:chase.wide#1"
    digest: str  # sha256 hex of the output object
    size: int
    meta: dict = field(default_factory=dict, hash=False)  # provenance
    created: float = field(default_factory=time.time)


def storage_error(exc: BaseException, action: str, where, *, hint: str = _CACHE_HINT) -> StoreError:
    """Turn an OSError (or sqlite3 error) into a StoreError that names the directory and says
    what to do. `action` is a gerund phrase ("writing an object"); `where` a path."""
    where = str(where)
    code = getattr(exc, "errno", None)
    text = str(exc) if not isinstance(exc, OSError) else (exc.strerror or str(exc))
    low = str(exc).lower()
    if code in (errno.ENOSPC, errno.EDQUOT) or "database or disk is full" in low:
        msg = (f"no space left on the device holding {where} while {action}; "
               f"free some space (e.g. `wanflow cache gc`) {hint}")
    elif code == errno.EROFS:
        msg = f"{where} is on a read-only file system (while {action}); {hint.removeprefix('or ')}"
    elif code in (errno.EACCES, errno.EPERM) or "readonly database" in low:
        msg = (f"permission denied while {action} in {where} ({text}); "
               f"fix its permissions {hint}")
    elif "database is locked" in low:
        msg = (f"{where} is locked by another process while {action}; "
               f"wait for it to finish {hint}")
    elif isinstance(exc, sqlite3.DatabaseError) and ("malformed" in low or "not a database" in low):
        msg = f"{where} is corrupt ({text}) while {action}; move it aside {hint}"
    else:
        msg = f"cannot use {where} while {action}: {text}; check the directory {hint}"
    err = StoreError(msg)
    err.__cause__ = exc
    return err


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")
    return digest


def hash_file(path) -> tuple[str, int]:
    """sha256 hex digest and size of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _fsync_dir(path) -> None:
    """Make a rename in `path` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quiet(path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _copy_and_hash(src_f, dst_fd) -> tuple[str, int]:
    """Copy an open binary file to an fd, fsync, return (digest, size) of what was written."""
    h = hashlib.sha256()
    size = 0
    with os.fdopen(dst_fd, "wb", closefd=False) as out:
        while chunk := src_f.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest(), size


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


class Store:
    """A cache directory: content-addressed objects plus result records.

    Thread-safe: object writes use unique temporary files, record access goes through one
    SQLite connection guarded by a lock. Several processes may share a directory (SQLite WAL
    with a busy timeout; renames are atomic); `run_lock` keeps two runs apart.
    """

    def __init__(self, root):
        self.root = Path(root).absolute()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not self.root.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(self.root))
            # Probe: can we really create files here (read-only mounts, ACLs, full quota)?
            probe = self.root / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(probe)
        except OSError as exc:
            raise storage_error(exc, "opening the cache", self.root) from exc

    # ---- context manager ----------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ---- objects ------------------------------------------------------------------------

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def path(self, digest: str) -> Path:
        """Where the object with this digest lives (it may not exist)."""
        _check_digest(digest)
        return self.root / "objects" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        """Whether the object exists (a stat; no hashing)."""
        return os.path.isfile(self.path(digest))

    def _new_tmp(self, prefix: str) -> tuple[int, str]:
        os.makedirs(self.tmp_dir, exist_ok=True)
        name = os.path.join(self.tmp_dir, f"{prefix}-{os.getpid()}-{secrets.token_hex(8)}.tmp")
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name

    def _install(self, tmp: str, digest: str, size: int) -> None:
        """Rename a complete, fsync'ed temporary file into objects/ (no rewrite if present)."""
        dest = self.path(digest)
        try:
            if os.stat(dest).st_size == size:
                _unlink_quiet(tmp)
                return
        except FileNotFoundError:
            pass
        # Missing, or present with the wrong size (truncated by a crash elsewhere): replace.
        os.makedirs(dest.parent, exist_ok=True)
        os.chmod(tmp, _OBJECT_MODE)
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)

    def put_file(self, src, *, move: bool = False) -> tuple[str, int]:
        """Store a file; returns (digest, size).

        The file is hashed first; if the object is already stored nothing is written.
        Otherwise it is copied into tmp/ (hashing again as it goes, so what is stored is
        exactly what was hashed), fsync'ed and renamed into place. With `move=True` the file
        itself is renamed in when it is on the same filesystem, and is consumed either way.
        Errors reading `src` propagate as OSError; errors writing the store raise StoreError.
        """
        src = os.fspath(src)
        digest, size = hash_file(src)
        dest = self.path(digest)
        try:
            if os.stat(dest).st_size == size:
                if move:
                    _unlink_quiet(src)
                return digest, size
        except FileNotFoundError:
            pass
        if move:
            try:
                fd = os.open(src, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.makedirs(dest.parent, exist_ok=True)
                os.replace(src, dest)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EACCES):
                    raise storage_error(exc, "moving a file into the store", self.root) from exc
                # Another filesystem (or a file we may not rename): copy, then consume src.
            else:
                with contextlib.suppress(OSError):  # best effort: the object is in place
                    os.chmod(dest, _OBJECT_MODE)
                _fsync_dir(dest.parent)
                return digest, size
        with open(src, "rb", buffering=0) as src_f:
            tmp = None
            try:
                fd, tmp = self._new_tmp("put")
                try:
                    digest, size = _copy_and_hash(src_f, fd)
                finally:
                    os.close(fd)
                self._install(tmp, digest, size)
                tmp = None
            except OSError as exc:
                raise storage_error(exc, "writing an object", self.root) from exc
            finally:
                if tmp is not None:
                    _unlink_quiet(tmp)
        if move:
            _unlink_quiet(src)
        return digest, size

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; returns their digest."""
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        try:
            if os.stat(self.path(digest)).st_size == len(data):
                return digest
        except FileNotFoundError:
            pass
        tmp = None
        try:
            fd, tmp = self._new_tmp("put")
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            self._install(tmp, digest, len(data))
            tmp = None
        except OSError as exc:
            raise storage_error(exc, "writing an object", self.root) from exc
        finally:
            if tmp is not None:
                _unlink_quiet(tmp)
        return digest

    def verified_path(self, digest: str) -> Path | None:
        """The object's path after re-hashing it; None if missing or corrupt (a corrupt
        object is removed, so it is never served)."""
        path = self.path(digest)
        try:
            actual, _ = hash_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(exc, "reading an object", self.root) from exc
        if actual != digest:
            _unlink_quiet(path)
            return None
        return path

    def materialize(self, digest: str, dest) -> None:
        """Make `dest` hold the object: a hard link when possible, else a copy; atomic.

        Nothing is done if `dest` already is the object (same inode), or when hard links are
        impossible and `dest` already has the object's content.
        """
        src = self.path(digest)
        dest = Path(dest)
        try:
            st_src = os.stat(src)
        except FileNotFoundError:
            raise StoreError(f"object {digest[:12]}… is missing from the cache at {self.root}; "
                             "run again to regenerate it") from None
        try:
            st_dst = os.stat(dest)
        except FileNotFoundError:
            st_dst = None
        except OSError as exc:
            raise storage_error(exc, f"writing {dest.name}", dest.parent,
                                hint="or choose another output path") from exc
        if st_dst is not None and (st_dst.st_ino, st_dst.st_dev) == (st_src.st_ino,
                                                                      st_src.st_dev):
            return
        tmp = None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = str(dest.parent / f".{dest.name}.wanflow-{secrets.token_hex(6)}.tmp")
            try:
                os.link(src, tmp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP,
                                     errno.EOPNOTSUPP, errno.EACCES):
                    raise
                if (st_dst is not None and stat.S_ISREG(st_dst.st_mode)
                        and st_dst.st_size == st_src.st_size and hash_file(dest)[0] == digest):
                    tmp = None
                    return
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                try:
                    with open(src, "rb", buffering=0) as src_f:
                        copied, _ = _copy_and_hash(src_f, fd)
                finally:
                    os.close(fd)
                if copied != digest:
                    _unlink_quiet(src)
                    raise StoreError(f"object {digest[:12]}… in the cache at {self.root} was "
                                     "corrupt and has been removed; run again to regenerate it")
            os.replace(tmp, dest)
            tmp = None
        except OSError as exc:
            raise storage_error(exc, f"writing {dest.name}", dest.parent,
                                hint="or choose another output path") from exc
        finally:
            if tmp is not None:
                _unlink_quiet(tmp)

    def _iter_objects(self) -> Iterator[tuple[str, Path]]:
        try:
            subdirs = sorted(os.listdir(self.objects_dir))
        except FileNotFoundError:
            return
        for sub in subdirs:
            if len(sub) != 2:
                continue
            subpath = self.objects_dir / sub
            try:
                names = sorted(os.listdir(subpath))
            except NotADirectoryError:
                continue
            for name in names:
                digest = sub + name
                if _HEX64.match(digest):
                    yield digest, subpath / name

    def objects(self) -> Iterator[tuple[str, int]]:
        """(digest, size) of every stored object."""
        for digest, path in self._iter_objects():
            with contextlib.suppress(FileNotFoundError):
                yield digest, os.stat(path).st_size

    def verify(self) -> dict:
        """Re-hash every object and remove the corrupt ones.

        Returns {"checked": n, "corrupt": [digests], "removed": n}."""
        checked, corrupt, removed = 0, [], 0
        for digest, path in self._iter_objects():
            try:
                actual, _ = hash_file(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise storage_error(exc, "verifying objects", self.root) from exc
            checked += 1
            if actual != digest:
                corrupt.append(digest)
                try:
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise storage_error(exc, "removing a corrupt object", self.root) from exc
        return {"checked": checked, "corrupt": corrupt, "removed": removed}

    def gc(self, keep: set[str], *, dry_run: bool = True) -> list[tuple[str, int]]:
        """Objects not in `keep`, as sorted (digest, size) pairs; unless `dry_run`, delete
        them, the result records that point at them and stale temporary files.

        Run it under `run_lock` so that a concurrent run's fresh outputs are not collected."""
        keep = set(keep)
        doomed = [(d, s) for d, s in self.objects() if d not in keep]
        if dry_run:
            return doomed
        removed = []
        try:
            for digest, _ in doomed:
                path = self.path(digest)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                removed.append(digest)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # only succeeds when empty
            self._clean_tmp()
        except OSError as exc:
            raise storage_error(exc, "removing unused objects", self.root) from exc
        finally:
            if removed:
                self._delete_records_by_digest(removed)
        return doomed

    def _clean_tmp(self, older_than: float = _STALE_TMP) -> None:
        try:
            names = os.listdir(self.tmp_dir)
        except FileNotFoundError:
            return
        limit = time.time() - older_than
        for name in names:
            path = self.tmp_dir / name
            with contextlib.suppress(OSError):
                if os.stat(path).st_mtime < limit:
                    os.unlink(path)

    # ---- result records -----------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use. Call with self._lock held."""
        if self._conn is None:
            if self._closed:
                raise StoreError(f"the cache at {self.root} was closed")
            path = self.root / "results.db"
            try:
                conn = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                       check_same_thread=False)
                try:
                    conn.execute("PRAGMA busy_timeout = 30000")
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = FULL")
                    conn.executescript(_SCHEMA)
                except BaseException:
                    conn.close()
                    raise
            except sqlite3.Error as exc:
                raise storage_error(exc, "opening the result records", path) from exc
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _sql(self, action: str):
        with self._lock:
            try:
                yield self._db()
            except sqlite3.Error as exc:
                raise storage_error(exc, action, self.root / "results.db") from exc

    @staticmethod
    def _row(row) -> Result:
        key, task, digest, size, meta, created = row
        return Result(key=key, task=task, digest=digest, size=size, meta=json.loads(meta),
                      created=created)

    @staticmethod
    def _params(r: Result) -> tuple:
        _check_digest(r.digest)
        return (r.key, r.task, r.digest, int(r.size),
                json.dumps(r.meta, sort_keys=True, ensure_ascii=False, default=str),
                float(r.created))

    _COLS = "key, task, digest, size, meta, created"
    _UPSERT = ("INSERT INTO results (key, task, digest, size, meta, created) "
               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET task=excluded.task, "
               "digest=excluded.digest, size=excluded.size, meta=excluded.meta, "
               "created=excluded.created")

    def get_result(self, key: str) -> Result | None:
        with self._sql("reading a result record") as db:
            row = db.execute(f"SELECT {self._COLS} FROM results WHERE key = ?",
                             (key,)).fetchone()
        return self._row(row) if row else None

    def get_results(self, keys: Iterable[str]) -> dict[str, Result]:
        """The records of those keys that have one (batched: fast for 10,000 keys)."""
        keys = list(dict.fromkeys(keys))
        rows = []
        with self._sql("reading result records") as db:
            for i in range(0, len(keys), _SQL_CHUNK):
                chunk = keys[i:i + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows.extend(db.execute(
                    f"SELECT {self._COLS} FROM results WHERE key IN ({marks})", chunk))
        return {row[0]: self._row(row) for row in rows}

    def put_result(self, result: Result) -> None:
        """Insert or replace a record; durable when this returns."""
        params = self._params(result)
        with self._sql("writing a result record") as db:
            db.execute(self._UPSERT, params)

    def put_results(self, results: Iterable[Result]) -> None:
        """Insert or replace many records in one transaction."""
        params = [self._params(r) for r in results]
        with self._sql("writing result records") as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(self._UPSERT, params)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def delete_result(self, key: str) -> None:
        with self._sql("deleting a result record") as db:
            db.execute("DELETE FROM results WHERE key = ?", (key,))

    def all_results(self) -> list[Result]:
        with self._sql("reading result records") as db:
            rows = db.execute(f"SELECT {self._COLS} FROM results ORDER BY task, key").fetchall()
        return [self._row(row) for row in rows]

    def _delete_records_by_digest(self, digests: list[str]) -> None:
        with self._sql("removing result records") as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(digests), _SQL_CHUNK):
                    chunk = digests[i:i + _SQL_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    db.execute(f"DELETE FROM results WHERE digest IN ({marks})", chunk)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ---- run lock -----------------------------------------------------------------------

    @contextlib.contextmanager
    def run_lock(self, *, wait: float = 0.0, poll: float = 0.1):
        """Hold an exclusive lock on root/run.lock (flock) for the duration of a run.

        If another process holds it, poll for up to `wait` seconds, then raise StoreError
        naming its pid. The lock dies with the process, so a killed run never leaves it held.
        """
        path = self.root / "run.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error(exc, "opening the run lock", self.root) from exc
        try:
            deadline = time.monotonic() + max(0.0, wait)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise storage_error(exc, "taking the run lock", self.root) from exc
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pid = _read_pid(fd)
                    raise StoreError(
                        f"another wanflow run (pid {pid}) is using the cache at {self.root}; "
                        "wait for it or use --cache to pick another directory")
                time.sleep(min(poll, remaining))
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as exc:
                fcntl.flock(fd, fcntl.LOCK_UN)
                raise storage_error(exc, "writing the run lock", self.root) from exc
            try:
                yield self
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"
