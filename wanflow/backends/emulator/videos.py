"""The result videos: preview MP4s rendered on first download, and byte ranges of them; the
lengths of uploaded media, for the rules that add them up."""
from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import wave

from .tasks import Task
from .validation import Measured

_RANGE = re.compile(r"\s*bytes=(\d*)-(\d*)\s*")


class Measurer:
    """Measures uploaded audio and video (once per content), through `wanflow.media`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._content_locks: dict[str, threading.Lock] = {}
        self._known: dict[str, Measured | None] = {}

    def measure(self, data: bytes, workdir: str) -> Measured | None:
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:   # submits of the same upload race: one measures, the rest wait
            content_lock = self._content_locks.setdefault(digest, threading.Lock())
        with content_lock:
            if digest not in self._known:
                self._known[digest] = self._measure(data, workdir, digest)
            return self._known[digest]

    @staticmethod
    def _measure(data: bytes, workdir: str, digest: str) -> Measured | None:
        from ... import media  # lazy: av is heavy and only needed for media it holds

        path = os.path.join(workdir, "measure", digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        try:
            probe = media.probe(path)
            return Measured(probe.duration, probe.width, probe.height)
        except Exception:  # noqa: BLE001  not a video: audio has a length, an image none
            try:
                seconds = media.media_duration(path)
            except Exception:  # noqa: BLE001  not media at all: nothing to measure
                return None
            return Measured(seconds) if seconds >= 0.5 else None   # < 0.5 s: a still
        finally:
            os.unlink(path)


class Renderer:
    """Renders each task's video once, into `<workdir>/videos`, however many downloads race."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._task_locks: dict[str, threading.Lock] = {}

    def video(self, task: Task, workdir: str, scale: float) -> str:
        """The path of the task's MP4: its size times `scale`, its duration and fps, a tone
        standing in for generated sound if the model makes any."""
        dest = os.path.join(workdir, "videos", f"{task.task_id}.mp4")
        with self._lock:
            task_lock = self._task_locks.setdefault(task.task_id, threading.Lock())
        with task_lock:
            if os.path.exists(dest):
                return dest
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            from ... import media  # lazy: av is heavy and only needed for downloads

            sub = task.submission
            width = max(16, int(sub.width * scale) // 2 * 2)
            height = max(16, int(sub.height * scale) // 2 * 2)
            card = media.PreviewCard(
                "emulator", task.task_id[:8], 1, sub.prompt or "(no prompt)", float(sub.duration),
                width, height, sub.rule.fps, model=task.model, label="EMULATOR")
            audio = self._tone(workdir, sub.duration) if sub.audible else None
            media.render_preview(card, dest, audio=audio)
            return dest

    def _tone(self, workdir: str, seconds: float) -> str:
        """A soft beeping WAV standing in for generated audio (standard library only)."""
        path = os.path.join(workdir, "audio", f"tone-{seconds}s.wav")
        with self._lock:
            if os.path.exists(path):
                return path
            os.makedirs(os.path.dirname(path), exist_ok=True)
            rate = 16000
            frames = bytearray()
            for i in range(int(rate * seconds)):
                t = i / rate
                on = (t % 1.0) < 0.25
                value = int(6000 * math.sin(2 * math.pi * 440 * t)) if on else 0
                frames += value.to_bytes(2, "little", signed=True)
            partial = path + ".part"
            with wave.open(partial, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(bytes(frames))
            os.replace(partial, path)
            return path


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `Range: bytes=...` over `size` bytes; None if the range
    is malformed or not satisfiable."""
    m = _RANGE.fullmatch(header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        suffix = int(m.group(2))
        if suffix == 0:
            return None
        start, end = max(0, size - suffix), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        return None
    return start, end


def answer_range(data: bytes, header: str | None) -> tuple[int, bytes, dict]:
    """(status, body, headers) of a GET of `data` with an optional `Range` header: 200 with
    the whole, 206 with the range, or 416 (empty body) if it cannot be satisfied."""
    size = len(data)
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{hashlib.md5(data).hexdigest().upper()}"'}
    if not header:
        return 200, data, headers
    byte_range = parse_range(header, size)
    if byte_range is None:
        return 416, b"", {"Content-Range": f"bytes */{size}"}
    start, end = byte_range
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return 206, data[start:end + 1], headers
