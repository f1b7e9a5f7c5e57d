"""Rendering a preview animatic: a card's frames and the shot's audio, encoded to MP4."""
from __future__ import annotations

import dataclasses
import os
from fractions import Fraction

import numpy as np

from ..errors import MediaError
from .audio import decode_audio, fit_length, samples_at
from .cards import CardPainter, PreviewCard
from .encode import Mp4Writer
from .files import atomic_output, failures


def render_preview(card: PreviewCard, dest, audio=None) -> None:
    """Write an H.264/AAC MP4 title card of exactly `card.duration` seconds to `dest`."""
    name = os.fspath(dest)
    w, h = int(card.width), int(card.height)
    fps: int | float = card.fps   # a whole float is taken as the integer it is
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise MediaError(f"{name}: preview size {w}x{h} must be even and at least 16x16")
    if isinstance(fps, float) and fps.is_integer():
        fps = int(fps)
        card = dataclasses.replace(card, fps=fps)
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise MediaError(f"{name}: preview frame rate must be a positive integer, got {fps!r}")
    n_frames = round(card.duration * fps)
    if n_frames < 1:
        raise MediaError(f"{name}: preview duration {card.duration!r} s is too short")
    q = Fraction(fps)
    n_samples = samples_at(n_frames, q)
    if audio is not None:
        pcm, _ = decode_audio(audio)
        pcm = fit_length(pcm, n_samples)
    else:
        pcm = np.zeros((2, n_samples), np.float32)
    painter = CardPainter(card, n_frames)
    with atomic_output(dest, ".mp4") as tmp, failures(dest, "writing the preview"):
        # Speed over size: a preview is a stand-in, so a fast preset and a fixed quantiser.
        writer = Mp4Writer(tmp, w, h, q, pcm, preset="ultrafast", qp=28, gop=2 * fps)
        try:
            for i in range(n_frames):
                writer.video(painter.frame(i))
            writer.finish()
        except BaseException:
            writer.abort()
            raise
