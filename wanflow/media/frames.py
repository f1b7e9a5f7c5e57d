"""Still frames from videos: the first, the last or the one shown at a time, as PNG."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ..errors import MediaError
from .files import atomic_output, checked_input, failures, open_container


def _first_frame(container, vs):
    for frame in container.decode(vs):
        return frame
    return None


def _last_frame(container, vs):
    """The last frame in presentation order: decode from the last keyframe to the end."""
    tail = []
    for pkt in container.demux(vs):
        if pkt.size == 0:
            continue
        if pkt.is_keyframe:
            tail = [pkt]
        else:
            tail.append(pkt)
    ctx = vs.codec_context
    last = None
    for pkt in tail + [None]:
        for frame in ctx.decode(pkt):
            if last is None or (frame.pts or 0) >= (last.pts or 0):
                last = frame
    return last


def _frame_at(container, vs, seconds: float):
    """The frame on screen at `seconds`: seek to the keyframe before, decode forward."""
    tb = vs.time_base
    start = vs.start_time or 0
    target = start + int(seconds / tb)
    container.seek(target, stream=vs, backward=True, any_frame=False)
    chosen = None
    eps = 1e-6
    for frame in container.decode(vs):
        t = frame.time if frame.time is not None else 0.0
        if chosen is not None and t > seconds + float(start * tb) + eps:
            break
        chosen = frame
    return chosen


def _grab(src, which) -> np.ndarray:
    """Frame `which` ('first', 'last' or seconds) of `src` as an RGB array."""
    p = checked_input(src)
    if isinstance(which, bool) or not (which in ("first", "last") or isinstance(which, (int, float))):
        raise MediaError(f"{p}: cannot pick frame {which!r}: use 'first', 'last' or seconds")
    container = open_container(p)
    with container, failures(p, "decoding a frame"):
        if not container.streams.video:
            raise MediaError(f"{p}: not a video: it has no video stream")
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        if which == "first":
            frame = _first_frame(container, vs)
        elif which == "last":
            frame = _last_frame(container, vs)
        else:
            if which < 0:
                raise MediaError(f"{p}: cannot take a frame at {which} s (negative time)")
            duration = container.duration / 1e6 if container.duration else None
            if duration is not None and which >= duration:
                frame = _last_frame(container, vs)
            else:
                frame = _frame_at(container, vs, float(which))
        if frame is None:
            raise MediaError(f"{p}: no video frame could be decoded")
        return frame.to_ndarray(format="rgb24")


def save_png(rgb: np.ndarray, dest) -> None:
    """Write an (h, w, 3) uint8 RGB array to `dest` as a PNG, atomically."""
    with atomic_output(dest, ".png") as tmp, failures(dest, "writing the image"):
        Image.fromarray(rgb, "RGB").save(tmp, format="PNG")


def extract_frame(src, dest_png, which="last") -> None:
    """Write one frame of `src` ('first', 'last' or a time in seconds) as an RGB PNG."""
    save_png(_grab(src, which), dest_png)


def thumbnail(src, dest_png, width=320, at="first") -> None:
    """Write a PNG of one frame scaled to `width` pixels wide (aspect kept)."""
    rgb = _grab(src, at)
    h, w = rgb.shape[:2]
    width = int(width)
    if width < 1:
        raise MediaError(f"{os.fspath(dest_png)}: thumbnail width must be positive, got {width}")
    height = max(1, round(h * width / w))
    img = Image.fromarray(rgb, "RGB").resize((width, height), Image.Resampling.LANCZOS)
    save_png(np.asarray(img), dest_png)
