"""File-system primitives of the store: hashing, durable atomic writes, copies, and the
translation of OS errors into one clear `StoreError`.

Every write goes to a temporary file on the same filesystem, is fsync'ed and then renamed
into place, so a crash or a full disk never leaves a partial file behind.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import sqlite3
from pathlib import Path
from typing import IO

from ..errors import StoreError

StrPath = str | os.PathLike[str]   # what the store takes for a file or directory name

CHUNK = 1 << 20  # bytes read at a time when hashing or copying
CACHE_HINT = "or use --cache to pick another directory"
_FICLONE = 0x40049409  # Linux ioctl: share the source's blocks (btrfs, XFS, ...)


def storage_error(exc: BaseException, action: str, where: StrPath, *,
                  hint: str = CACHE_HINT) -> StoreError:
    """Turn an OSError (or sqlite3 error) into a StoreError that names the directory and
    says what to do. `action` is a gerund phrase ("writing an object"); `where` a path."""
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


def hash_file(path: StrPath) -> tuple[str, int]:
    """sha256 hex digest and size of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def fsync_dir(path: StrPath) -> None:
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


def unlink_quiet(path: StrPath) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def copy_and_hash(src_f: IO[bytes], dst_fd: int) -> tuple[str, int]:
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


def try_reflink(src_fd: int, dst_fd: int) -> bool:
    """Share `src`'s blocks with `dst` where the filesystem can (copy-on-write: writing to
    either file later never changes the other). False where it cannot."""
    try:
        fcntl.ioctl(dst_fd, _FICLONE, src_fd)
    except OSError:
        return False
    return True


def temp_beside(dest: Path, tag: str = "wanflow") -> Path:
    """A fresh temporary name in `dest`'s directory (hidden, unique)."""
    return dest.parent / f".{dest.name}.{tag}-{secrets.token_hex(6)}.tmp"


def write_atomic(path: StrPath, content: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `content` atomically and durably (temp file, fsync, rename)."""
    path = Path(path)
    tmp = temp_beside(path)
    renamed = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            if mode is not None:
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        renamed = True
    finally:
        if not renamed:
            unlink_quiet(tmp)
    fsync_dir(path.parent)
