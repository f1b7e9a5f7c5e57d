"""Reading inputs and writing outputs safely: the file rules every media module follows.

Inputs are checked (exists, not a directory, not empty) before a library sees them, and
library errors become :class:`MediaError` naming the file. Outputs go to a temporary file
in the destination's directory and are moved into place with ``os.replace``, so a failure
leaves nothing at the destination and no temporary file behind.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager, suppress

import av
from PIL import Image

from ..errors import MediaError


def reason(exc: BaseException) -> str:
    """A library error as a short phrase for a message (no trailing full stop)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().rstrip(".")


@contextmanager
def failures(path, doing: str):
    """Turn library errors raised while `doing` something with `path` into MediaError."""
    try:
        yield
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError, MemoryError,
            Image.DecompressionBombError) as exc:
        raise MediaError(f"{os.fspath(path)}: {doing} failed: {reason(exc)}") from None


@contextmanager
def atomic_output(dest, ext: str | None = None):
    """Yield a temporary path next to `dest`; move it onto `dest` when the block succeeds.

    On any failure the temporary file is removed and `dest` is left untouched. `ext` is the
    temporary file's extension (libraries pick the format from it); by default `dest`'s.
    """
    dest = os.fspath(dest)
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise MediaError(f"{dest}: cannot write: directory {directory} does not exist")
    if os.path.isdir(dest):
        raise MediaError(f"{dest}: cannot write: it is a directory")
    base = os.path.basename(dest)
    if ext is None:
        ext = os.path.splitext(base)[1]
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.part{ext}")
    try:
        yield tmp
        with failures(dest, "writing"):
            os.replace(tmp, dest)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def checked_input(path) -> str:
    """`path` as a string, after checking it names a non-empty regular file."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise MediaError(f"{p}: file does not exist")
    if os.path.isdir(p):
        raise MediaError(f"{p}: is a directory, not a media file")
    if os.path.getsize(p) == 0:
        raise MediaError(f"{p}: file is empty (0 bytes)")
    return p


def open_container(path):
    """Open an audio/video file for reading with PyAV, or raise MediaError saying why not."""
    p = checked_input(path)
    try:
        return av.open(p, "r", metadata_errors="replace")
    except av.FFmpegError as exc:
        raise MediaError(f"{p}: not a readable audio/video file ({reason(exc)})") from None
    except OSError as exc:
        raise MediaError(f"{p}: cannot open: {reason(exc)}") from None
