"""Input checks against the API's limits, for the spec validator: a list of problems each.

An empty list means the file is fine. Problems are whole sentences naming the file, so the
validator can show them as they are.
"""
from __future__ import annotations

import os

from PIL import Image

from ..errors import MediaError
from .files import checked_input, open_container, reason
from .probing import media_duration, scan_clip


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _size_problem(p, size, max_bytes) -> list[str]:
    if size > max_bytes:
        return [f"{p}: file is {_mb(size)}; the limit is {_mb(max_bytes)}"]
    return []


def _duration_problems(p: str, seconds: float, min_seconds: float,
                       max_seconds: float) -> list[str]:
    if seconds < min_seconds:
        return [f"{p}: duration {seconds:.2f} s is shorter than the minimum of {min_seconds:g} s"]
    if seconds > max_seconds:
        return [f"{p}: duration {seconds:.2f} s is longer than the maximum of {max_seconds:g} s"]
    return []


def check_image(path, *, min_side=360, max_side=2000, max_bytes=10 * 1024 * 1024) -> list[str]:
    """Problems that would make the API refuse this image (empty list: fine)."""
    p = os.fspath(path)
    try:
        checked_input(p)
    except MediaError as exc:
        return [str(exc)]
    problems = _size_problem(p, os.path.getsize(p), max_bytes)
    try:
        with Image.open(p) as img:
            fmt = img.format or "unknown"
            if fmt not in ("JPEG", "PNG", "BMP", "WEBP"):
                problems.append(f"{p}: format {fmt} is not accepted; use JPEG, PNG, BMP or WEBP")
            w, h = img.size
            for side, v in (("width", w), ("height", h)):
                if v < min_side:
                    problems.append(f"{p}: {side} {v} px is below the minimum of {min_side} px")
                elif v > max_side:
                    problems.append(f"{p}: {side} {v} px is above the maximum of {max_side} px")
            alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
            if fmt == "PNG" and alpha:
                problems.append(f"{p}: PNG has an alpha (transparency) channel; save it as RGB "
                                f"without alpha")
            # Decode the pixels too (catches a damaged file), unless it is far too large.
            if max(w, h) <= 4 * max_side:
                img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        problems.append(f"{p}: not a readable image ({reason(exc)})")
    return problems


def image_size(path) -> tuple[int, int]:
    """(width, height) of an image file, honouring no EXIF rotation."""
    p = checked_input(path)
    try:
        with Image.open(p) as img:
            return img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{p}: not a readable image ({reason(exc)})") from None


def check_audio(path, *, min_seconds=3.0, max_seconds=30.0,
                max_bytes=15 * 1024 * 1024) -> list[str]:
    """Problems that would make the API refuse this audio file (empty list: fine)."""
    p = os.fspath(path)
    try:
        container = open_container(p)
    except MediaError as exc:
        return [str(exc)]
    problems = _size_problem(p, os.path.getsize(p), max_bytes)
    with container:
        kinds = set((container.format.name or "").split(","))
        kind = "wav" if "wav" in kinds else "mp3" if "mp3" in kinds else None
        if kind is None:
            problems.append(f"{p}: format {container.format.name} is not accepted; "
                            f"the API takes WAV or MP3 audio")
        else:
            ext = os.path.splitext(p)[1].lower().lstrip(".")
            if ext and ext != kind:
                problems.append(f"{p}: content is {kind.upper()} but the name ends in .{ext}")
        if not container.streams.audio:
            problems.append(f"{p}: contains no audio stream")
            return problems
    try:
        seconds = media_duration(p)
    except MediaError as exc:
        return problems + [str(exc)]
    return problems + _duration_problems(p, seconds, min_seconds, max_seconds)


def check_video(path, *, min_seconds=2.0, max_seconds=30.0,
                max_bytes=100 * 1024 * 1024) -> list[str]:
    """Problems that would make the API refuse this reference video (empty list: fine)."""
    p = os.fspath(path)
    try:
        scan = scan_clip(p)
    except MediaError as exc:
        return [str(exc)]
    problems = _size_problem(p, scan.probe.size_bytes, max_bytes)
    if not ({"mp4", "mov"} & set(scan.format_name.split(","))):
        problems.append(f"{p}: format {scan.format_name} is not accepted; use MP4 or MOV")
    seconds = scan.probe.duration
    return problems + _duration_problems(p, seconds, min_seconds, max_seconds)
