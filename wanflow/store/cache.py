"""A cache directory: the content store and the action cache side by side, and the run lock.

Layout (by default `<spec dir>/.wanflow`)::

    objects/ab/cdef…   outputs by content (`ObjectStore`)
    tmp/               temporary files, renamed into objects/ once complete
    results.db         task key -> output digest + provenance (`ActionCache`)
    journal.db         remote tasks in flight (`wanflow.store.journal`)
    run.lock           flock'ed by the run that uses the cache; holds its pid

The two parts are kept apart so that a second tier (a team's remote store,
`wanflow.store.remote`) can sit behind each of them without this class knowing.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from ..errors import StoreError
from .actions import ActionCache, Result
from .fs import StrPath, storage_error
from .objects import ObjectStore

__all__ = ["Result", "Store"]


class Store:
    """The cache directory `root`: `objects` (content) and `actions` (results)."""

    def __init__(self, root: StrPath) -> None:
        self.root = Path(root).absolute()
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
        self.objects = ObjectStore(self.root)
        self.actions = ActionCache(self.root / "results.db")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # What the assessment reads (plan.assess.ResultReader).

    def has(self, digest: str) -> bool:
        return self.objects.has(digest)

    def get_result(self, key: str) -> Result | None:
        return self.actions.get(key)

    def get_results(self, keys: list[str]) -> dict[str, Result]:
        return self.actions.get_many(keys)

    # ---- upkeep -------------------------------------------------------------------------

    def verify(self) -> dict[str, Any]:
        """Re-hash every object, remove the corrupt ones and forget every result made from
        them, directly or not (a scene assembled from a corrupt clip is not trusted either).

        Returns {"checked", "corrupt": [digests], "removed", "invalidated": [task ids]}."""
        checked, corrupt = self.objects.verify()
        invalidated = self._invalidate(corrupt)
        return {"checked": checked, "corrupt": corrupt, "removed": len(corrupt),
                "invalidated": invalidated}

    def _invalidate(self, digests: list[str]) -> list[str]:
        bad = set(digests)
        dropped: list[str] = []
        pending = list(digests)
        results = self.actions.all() if digests else []
        while pending:
            digest = pending.pop()
            for r in results:
                if r.key in dropped:
                    continue
                # A record names its output, and its inputs inside its key material.
                if r.digest == digest or digest in _material_text(r):
                    dropped.append(r.key)
                    if r.digest not in bad:
                        bad.add(r.digest)
                        pending.append(r.digest)
        for key in dropped:
            self.actions.delete(key)
        by_key = {r.key: r.task for r in results}
        return sorted({by_key[k] for k in dropped})

    def gc(self, keep: set[str], *, dry_run: bool = True) -> list[tuple[str, int]]:
        """Objects not in `keep`, as sorted (digest, size) pairs; unless `dry_run`, delete
        them, the result records that point at them and stale temporary files.

        Run it under `run_lock` so that a concurrent run's fresh outputs are not collected."""
        doomed = sorted((d, s) for d, s in self.objects.objects() if d not in keep)
        if dry_run:
            return doomed
        removed: list[str] = []
        try:
            removed = self.objects.remove(d for d, _ in doomed)
            self.objects.clean_tmp()
        finally:
            if removed:
                self.actions.delete_by_digests(removed)
        return doomed

    # ---- run lock -----------------------------------------------------------------------

    @contextlib.contextmanager
    def run_lock(self, *, wait: float = 0.0, poll: float = 0.1) -> Iterator[Self]:
        """Hold an exclusive lock on root/run.lock (flock) for the duration of a run.

        If another process holds it, poll for up to `wait` seconds, then raise StoreError
        naming its pid. The lock dies with the process, so a killed run never leaves it held.
        """
        path = self.root / "run.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
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
        self.actions.close()


def _material_text(result: Result) -> str:
    material = result.meta.get("material")
    return repr(material) if material is not None else ""


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"
