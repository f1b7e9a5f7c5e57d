"""The content store: every output as an object named by the sha256 of its bytes.

    objects/ab/cdef…   read-only files, written whole or not at all
    tmp/               temporary files of this store, renamed into objects/ once complete

Objects are not trusted (a cache may be restored from elsewhere): `verified_path` re-hashes
an object before it is used as an input and removes a corrupt one, so it is never served.
Outputs reach the paths a spec names by copy (or reflink), never by hard link: editing a
render can never change the store.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ..errors import StoreError
from .fs import (
    StrPath,
    copy_and_hash,
    fsync_dir,
    hash_file,
    storage_error,
    temp_beside,
    try_reflink,
    unlink_quiet,
)

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_TMP_NAME = re.compile(r"(put|fetch)-\d+-[0-9a-f]{16}\.tmp\Z")   # what this store creates
OBJECT_MODE = 0o444   # objects are read-only
STALE_TMP = 3600.0    # gc removes this store's temporary files older than this (seconds)
_OUTPUT_HINT = "or choose another output path"


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")
    return digest


class ObjectStore:
    """Objects under `root`: put, verify, materialise, list, remove. Thread-safe (every
    write uses its own temporary file and an atomic rename)."""

    def __init__(self, root: StrPath) -> None:
        self.root = Path(root).absolute()
        self._objects = os.path.join(self.root, "objects")   # str: `has` is on the hot path

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def path(self, digest: str) -> Path:
        """Where the object with this digest lives (it may not exist)."""
        check_digest(digest)
        return self.root / "objects" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        """Whether the object exists (a stat; no hashing)."""
        check_digest(digest)
        return os.path.isfile(os.path.join(self._objects, digest[:2], digest[2:]))

    # ---- writing ------------------------------------------------------------------------

    def new_tmp(self, prefix: str = "put") -> tuple[int, str]:
        """A fresh temporary file in tmp/ (fd, path), named so that gc knows it is ours."""
        os.makedirs(self.tmp_dir, exist_ok=True)
        name = os.path.join(self.tmp_dir, f"{prefix}-{os.getpid()}-{secrets.token_hex(8)}.tmp")
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name

    def temp_path(self, suffix: str = "") -> str:
        """A path in tmp/ for a tool to write a file that will be put into the store."""
        fd, name = self.new_tmp("put")
        os.close(fd)
        if suffix:
            os.replace(name, name + suffix)
            name += suffix
        return name

    def install(self, tmp: str, digest: str, size: int) -> None:
        """Rename a complete, fsync'ed temporary file of this store into objects/ (no
        rewrite if present). The caller hashed it as it wrote it: `digest` is its hash."""
        dest = self.path(digest)
        try:
            if os.stat(dest).st_size == size:
                unlink_quiet(tmp)
                return
        except FileNotFoundError:
            pass
        # Missing, or present with the wrong size (truncated by a crash elsewhere): replace.
        os.makedirs(dest.parent, exist_ok=True)
        os.chmod(tmp, OBJECT_MODE)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)

    def put_file(self, src: StrPath, *, move: bool = False) -> tuple[str, int]:
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
                    unlink_quiet(src)
                return digest, size
        except FileNotFoundError:
            pass
        if move and self._move_in(src, dest):
            return digest, size
        with open(src, "rb", buffering=0) as src_f:
            digest, size = self._write_from(src_f)
        if move:
            unlink_quiet(src)
        return digest, size

    def _move_in(self, src: str, dest: Path) -> bool:
        """Rename `src` into place; False when it is on another filesystem (copy instead)."""
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
            return False
        with contextlib.suppress(OSError):  # best effort: the object is in place
            os.chmod(dest, OBJECT_MODE)
        fsync_dir(dest.parent)
        return True

    def _write_from(self, src_f: IO[bytes]) -> tuple[str, int]:
        tmp = None
        try:
            fd, tmp = self.new_tmp("put")
            try:
                digest, size = copy_and_hash(src_f, fd)
            finally:
                os.close(fd)
            self.install(tmp, digest, size)
            tmp = None
            return digest, size
        except OSError as exc:
            raise storage_error(exc, "writing an object", self.root) from exc
        finally:
            if tmp is not None:
                unlink_quiet(tmp)

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
            fd, tmp = self.new_tmp("put")
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            self.install(tmp, digest, len(data))
            tmp = None
        except OSError as exc:
            raise storage_error(exc, "writing an object", self.root) from exc
        finally:
            if tmp is not None:
                unlink_quiet(tmp)
        return digest

    # ---- reading ------------------------------------------------------------------------

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
            unlink_quiet(path)
            return None
        return path

    def materialize(self, digest: str, dest: StrPath) -> None:
        """Make `dest` an independent copy of the object (a reflink where the filesystem
        offers one), atomically. Nothing is written when `dest` already holds exactly the
        object's bytes. The bytes are hashed as they are copied: a corrupt object is
        removed and reported, never copied out."""
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
                                hint=_OUTPUT_HINT) from exc
        if (st_dst is not None and stat.S_ISREG(st_dst.st_mode)
                and st_dst.st_size == st_src.st_size and hash_file(dest)[0] == digest):
            return
        tmp: Path | None = None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_beside(dest)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with open(src, "rb", buffering=0) as src_f:
                    if try_reflink(src_f.fileno(), fd):
                        copied, _ = hash_file(tmp)
                    else:
                        copied, _ = copy_and_hash(src_f, fd)
            finally:
                os.close(fd)
            if copied != digest:
                unlink_quiet(src)
                raise StoreError(f"object {digest[:12]}… in the cache at {self.root} was "
                                 "corrupt and has been removed; run again to regenerate it")
            os.replace(tmp, dest)
            tmp = None
        except OSError as exc:
            raise storage_error(exc, f"writing {dest.name}", dest.parent,
                                hint=_OUTPUT_HINT) from exc
        finally:
            if tmp is not None:
                unlink_quiet(tmp)

    # ---- listing, verifying, removing -----------------------------------------------------

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
                # Only names this store could have written: anything else is not ours.
                if _HEX64.match(digest) and os.path.isfile(subpath / name) \
                        and not os.path.islink(subpath / name):
                    yield digest, subpath / name

    def objects(self) -> Iterator[tuple[str, int]]:
        """(digest, size) of every stored object."""
        for digest, path in self._iter_objects():
            with contextlib.suppress(FileNotFoundError):
                yield digest, os.stat(path).st_size

    def verify(self) -> tuple[int, list[str]]:
        """Re-hash every object and remove the corrupt ones: (checked, corrupt digests)."""
        checked, corrupt = 0, []
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
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise storage_error(exc, "removing a corrupt object", self.root) from exc
        return checked, corrupt

    def remove(self, digests: Iterable[str]) -> list[str]:
        """Delete these objects (and emptied fan-out directories); returns those removed."""
        removed = []
        try:
            for digest in digests:
                path = self.path(digest)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                removed.append(digest)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # only succeeds when empty
        except OSError as exc:
            raise storage_error(exc, "removing unused objects", self.root) from exc
        return removed

    def clean_tmp(self, older_than: float = STALE_TMP) -> None:
        """Remove this store's temporary files left by dead processes."""
        try:
            names = os.listdir(self.tmp_dir)
        except FileNotFoundError:
            return
        limit = time.time() - older_than
        for name in names:
            if not _TMP_NAME.match(name.split(".tmp")[0] + ".tmp"):
                continue
            path = self.tmp_dir / name
            with contextlib.suppress(OSError):
                if os.lstat(path).st_mtime < limit:
                    os.unlink(path)
