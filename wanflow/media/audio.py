"""Audio as float32 PCM arrays of shape (2, n) at 48 kHz: decoding, trimming, timing."""
from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np

from ..errors import MediaError
from .files import failures, open_container

AUDIO_RATE = 48000


def samples_at(frame_index: int, fps: Fraction) -> int:
    """The audio sample that lines up with the start of video frame `frame_index`."""
    return round(Fraction(frame_index) * AUDIO_RATE / fps)


def decode_audio(path, *, stream_required=True) -> tuple[np.ndarray, float | None]:
    """Decode the first audio stream as float32 (2, n) at 48 kHz; also its start time."""
    container = open_container(path)
    p = os.fspath(path)
    with container, failures(p, "decoding the audio"):
        if not container.streams.audio:
            if stream_required:
                raise MediaError(f"{p}: has no audio stream")
            return np.zeros((2, 0), np.float32), None
        st = container.streams.audio[0]
        # Mono is duplicated to both channels at full level (swresample would pan it -3 dB).
        mono = st.codec_context.channels == 1
        resampler = av.AudioResampler(format="fltp", layout="mono" if mono else "stereo",
                                      rate=AUDIO_RATE)
        chunks = []
        start = None
        for frame in container.decode(st):
            if start is None and frame.pts is not None and frame.time_base is not None:
                start = float(frame.pts * frame.time_base)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    if not chunks:
        return np.zeros((2, 0), np.float32), start
    pcm = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if pcm.shape[0] == 1:
        pcm = np.repeat(pcm, 2, axis=0)
    return pcm[:2], start


def fit_length(pcm: np.ndarray, n: int) -> np.ndarray:
    """Trim or pad with silence to exactly n samples."""
    if pcm.shape[1] >= n:
        return np.ascontiguousarray(pcm[:, :n])
    out = np.zeros((2, n), np.float32)
    out[:, :pcm.shape[1]] = pcm
    return out
