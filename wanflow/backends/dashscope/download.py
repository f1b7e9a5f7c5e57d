"""Fetching a finished video from its signed result URL (reference §4.2, §11).

The body is streamed into a `.part` file beside `dest`, hashed as it goes, and renamed only
when complete: a short body is never accepted. An interrupted transfer resumes with `Range`
when the server supports it. An expired URL (result URLs live 24 h) is told apart from a
failure that a retry may cure, since only the latter is worth retrying.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import tempfile
import time
from typing import Literal, Self
from urllib.parse import parse_qs, urlsplit

from ...errors import DownloadError
from ...run.pacing import backoff
from ..base import Finished
from .errors import RETRY_BACKOFF_CAP, parse_error
from .transport import Http, Response, TransportFailure

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 5
EXPIRY_SKEW = 300           # s: an Expires this far in the past is expired without asking
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def expires_at(url: str) -> float | None:
    """The `Expires` (epoch seconds) of a signed OSS URL, if it has one."""
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return None
    for key in ("Expires", "expires", "x-oss-expires"):
        if key in query:
            try:
                return float(query[key][0])
            except ValueError:
                return None
    return None


def redact_url(url: str) -> str:
    """A result URL without its signature query, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def download_video(http: Http, finished: Finished, dest: str, *, attempts: int,
                         retry_backoff: float) -> str:
    """Write the video of `finished` to `dest` atomically; returns its sha256."""
    url = finished.video_url
    if not url:
        raise DownloadError(f"task {finished.remote_id} succeeded without a video_url",
                            code="NoVideoURL", retryable=False)
    shown = redact_url(url)
    expires = expires_at(url)
    if expires is not None and expires < time.time() - EXPIRY_SKEW:
        raise _expired(finished, shown)
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(dest)}.",
                               suffix=".part")
    os.close(fd)
    try:
        with _PartFile(tmp) as part:
            digest = await _download_into(http, finished, url, shown, part,
                                          attempts=attempts, retry_backoff=retry_backoff)
        os.replace(tmp, dest)
        return digest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _PartFile:
    """The `.part` file of a download, hashed as it grows."""

    def __init__(self, path: str):
        # This object is the context manager: __exit__ closes the file.
        self._fh = open(path, "wb")  # noqa: SIM115
        self._hasher = hashlib.sha256()
        self.size = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()

    def write(self, chunk: bytes) -> None:
        self._fh.write(chunk)
        self._hasher.update(chunk)
        self.size += len(chunk)

    def restart(self) -> None:
        """Drop what was written: the next response starts from byte 0."""
        self._fh.seek(0)
        self._fh.truncate()
        self._hasher = hashlib.sha256()
        self.size = 0

    def finish(self) -> str:
        """Flush to disk; the sha256 of the content."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return self._hasher.hexdigest()


def _expired(finished: Finished, shown: str, resp: Response | None = None) -> DownloadError:
    return DownloadError(
        f"the result URL of task {finished.remote_id} has expired (result URLs live 24 h): "
        f"{shown}; the video cannot be recovered without generating it again",
        code="URLExpired", status=resp.status_code if resp is not None else None,
        retryable=False)


async def _download_into(http: Http, finished: Finished, url: str, shown: str,
                         part: _PartFile, *, attempts: int, retry_backoff: float) -> str:
    resumable = False
    last = "no attempt"
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            await asyncio.sleep(backoff(attempt - 1, retry_backoff, RETRY_BACKOFF_CAP))
        # No Authorization: the URL is signed, and the host is not DashScope's.
        headers = {"Accept-Encoding": "identity"}
        if part.size and resumable:
            headers["Range"] = f"bytes={part.size}-"
        elif part.size:
            part.restart()
        try:
            async with http.stream(url, headers=headers) as resp:
                if resp.status_code == 403:
                    body = (await resp.aread()).decode("utf-8", "replace")
                    expires = expires_at(url)
                    if "expired" in body.lower() or (expires is not None
                                                     and expires < time.time()):
                        raise _expired(finished, shown, resp)
                    code, message, rid = parse_error(resp, http.scrub)
                    raise DownloadError(f"download of {shown} refused: {message}",
                                        code=code or "HTTP403", request_id=rid,
                                        status=403, retryable=False)
                if resp.status_code == 416 and part.size:
                    resumable, last = False, "range not satisfiable"
                    continue  # start over
                if resp.status_code in (404, 410):
                    code, message, rid = parse_error(resp, http.scrub)
                    raise DownloadError(f"download of {shown} failed: {message}",
                                        code=code or f"HTTP{resp.status_code}",
                                        request_id=rid, status=resp.status_code,
                                        retryable=False)
                if not resp.is_success:
                    code, message, _ = parse_error(resp, http.scrub)
                    last = f"HTTP {resp.status_code}: {message}"
                    if resp.status_code >= 500 or resp.status_code in (408, 429):
                        continue
                    raise DownloadError(f"download of {shown} failed: {message}",
                                        code=code or f"HTTP{resp.status_code}",
                                        status=resp.status_code, retryable=False)
                total = _expected_total(resp, part.size)
                if total is False:  # 206 for a range we did not ask for
                    resumable, last = False, "unexpected Content-Range"
                    continue
                if resp.status_code != 206 and part.size:
                    part.restart()  # the server ignored Range
                resumable = (resp.status_code == 206
                             or resp.headers.get("accept-ranges", "").lower() == "bytes")
                async for chunk in resp.aiter_bytes():
                    part.write(chunk)
        except TransportFailure as exc:
            last = f"{exc.text} after {part.size} bytes"
            log.debug("download of %s: %s", shown, last)
            continue
        if total is not None and part.size < total:
            last = f"body ended after {part.size} of {total} bytes"
            continue
        if total is not None and part.size > total:
            last = f"body longer than announced ({part.size} > {total} bytes)"
            resumable = False
            continue
        return part.finish()
    raise DownloadError(f"download of {shown} (task {finished.remote_id}) failed after "
                        f"{attempts} attempts: {last}; the video is still "
                        "available until its URL expires, retry the download",
                        code="DownloadFailed", retryable=True)


def _expected_total(resp: Response, have: int) -> int | Literal[False] | None:
    """Bytes the file will have once this response is read; None if unknown; False if the
    response does not continue at `have`."""
    if resp.status_code == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
        if not m or int(m.group(1)) != have:
            return False
        if m.group(3) != "*":
            return int(m.group(3))
        return int(m.group(2)) + 1
    length = resp.headers.get("content-length")
    if length and length.isdigit() and "content-encoding" not in resp.headers:
        return int(length)
    return None
