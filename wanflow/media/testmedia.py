"""Deterministic stand-in media for tests, benchmarks and the examples: tones and text cards."""
from __future__ import annotations

import math
import os
import wave
from fractions import Fraction

import av
import numpy as np

from ..errors import MediaError
from .cards import text_card
from .files import atomic_output, failures
from .frames import save_png


def write_tone(dest, seconds, *, freq=440.0, rate=48000, fmt="wav", channels=1) -> None:
    """Write a deterministic sine tone (amplitude 0.5) as WAV (pcm_s16le) or MP3."""
    name = os.fspath(dest)
    fmt = str(fmt).lower()
    if fmt not in ("wav", "mp3"):
        raise MediaError(f"{name}: tone format must be 'wav' or 'mp3', got {fmt!r}")
    if fmt == "mp3" and "libmp3lame" not in av.codecs_available:
        raise MediaError(f"{name}: cannot write MP3: the libmp3lame encoder is not "
                         f"available in this PyAV build")
    rate, channels = int(rate), int(channels)
    n = round(float(seconds) * rate)
    if n < 1 or rate < 1 or channels not in (1, 2):
        raise MediaError(f"{name}: bad tone parameters ({seconds} s, {rate} Hz, "
                         f"{channels} channels)")
    t = np.arange(n, dtype=np.float64) / rate
    sine = (0.5 * np.sin(2 * math.pi * float(freq) * t)).astype(np.float32)
    pcm = np.repeat(sine[None, :], channels, axis=0)
    layout = "mono" if channels == 1 else "stereo"
    with atomic_output(dest, "." + fmt) as tmp, failures(dest, "writing the tone"):
        if fmt == "wav":
            s16 = np.clip(np.rint(pcm.T * 32767), -32768, 32767).astype("<i2")
            with wave.open(tmp, "wb") as wf:
                wf.setnchannels(channels)
                wf.setsampwidth(2)
                wf.setframerate(rate)
                wf.writeframes(s16.tobytes())
            return
        with av.open(tmp, "w", format="mp3", container_options={"fflags": "+bitexact"}) as out:
            st = out.add_stream("libmp3lame", rate=rate, layout=layout)
            st.codec_context.bit_rate = 128000
            st.codec_context.thread_count = 1
            pos = 0
            size = 1152  # samples per MP3 frame
            while pos < n:
                chunk = np.ascontiguousarray(pcm[:, pos:pos + size])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                frame.sample_rate = rate
                frame.pts = pos
                frame.time_base = Fraction(1, rate)
                pos += chunk.shape[1]
                out.mux(st.encode(frame))
            out.mux(st.encode(None))


def write_card_image(dest, text, width, height) -> None:
    """Write a deterministic RGB PNG (no alpha) showing `text`, centred and wrapped."""
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise MediaError(f"{os.fspath(dest)}: bad image size {width}x{height}")
    save_png(text_card(text, width, height), dest)
