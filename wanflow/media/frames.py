"""Still frames from videos (the first, the last, the middle or the one shown at a time) and
thumbnails of images, as PNG."""
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
    is_seconds = isinstance(which, (int, float)) and not isinstance(which, bool)
    if not (is_seconds or which in ("first", "last")):
        raise MediaError(f"{p}: cannot pick frame {which!r}: use 'first', 'last' or seconds")
    container = open_container(p)
    with container, failures(p, "decoding a frame"):
        if not container.streams.video:
            raise MediaError(f"{p}: not a video: it has no video stream")
        vs = container.streams.video[0]
        # Decoded on this thread: a frame needs at most one group of pictures, where frame
        # threads (one per core) cost more to start than they save.
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
    _save_scaled(_grab(src, at), dest_png, width)


def frame_strip(src, dests, width=320) -> None:
    """Thumbnails of several frames of one video: `dests` maps 'first', 'middle', 'last'
    or seconds to the PNG to write. What a take looks like over its length, not only where
    it starts (the takes of an image-to-video shot all start on the same frame)."""
    duration = None
    for at, dest in dests.items():
        if at == "middle":
            if duration is None:
                with open_container(checked_input(src)) as container:
                    duration = container.duration / 1e6 if container.duration else 0.0
            at = duration / 2
        _save_scaled(_grab(src, at), dest, width)


def image_thumbnail(src, dest_png, width=320) -> None:
    """Write a PNG of an image file scaled to `width` pixels wide (aspect kept)."""
    p = checked_input(src)
    with failures(p, "reading the image"), Image.open(p) as img:
        rgb = np.asarray(img.convert("RGB"))
    _save_scaled(rgb, dest_png, width)


def _save_scaled(rgb: np.ndarray, dest_png, width) -> None:
    h, w = rgb.shape[:2]
    width = int(width)
    if width < 1:
        raise MediaError(f"{os.fspath(dest_png)}: thumbnail width must be positive, got {width}")
    height = max(1, round(h * width / w))
    img = Image.fromarray(rgb, "RGB").resize((width, height), Image.Resampling.LANCZOS)
    save_png(np.asarray(img), dest_png)
