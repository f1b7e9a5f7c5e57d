"""Helpers shared by the media tests: a preview card factory, the shared clips, and decoders.

The tests use PyAV/numpy/Pillow directly only to check wanflow.media's outputs independently.
"""
from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from wanflow import media

FPS = 24
SMALL = (320, 180)


def card(take=1, duration=2.0, width=SMALL[0], height=SMALL[1], fps=FPS, **kw):
    return media.PreviewCard(scene="S1", shot="A", take=take, prompt=kw.pop("prompt", "a cat"),
                             duration=duration, width=width, height=height, fps=fps, **kw)


def make_clips(d):
    """Three same-parameter small previews with a 1 kHz tone, plus a 4:3 and a portrait one."""
    media.write_tone(d / "tone.wav", 10.0, freq=1000.0)
    out = {}
    for i, dur in enumerate((2.0, 1.5, 2.0)):
        out[i] = d / f"clip{i}.mp4"
        media.render_preview(card(take=i + 1, duration=dur), out[i], audio=d / "tone.wav")
    out["4:3"] = d / "four_three.mp4"
    media.render_preview(card(take=9, duration=1.0, width=320, height=240), out["4:3"])
    out["portrait"] = d / "portrait.mp4"
    media.render_preview(card(take=8, duration=1.0, width=180, height=320), out["portrait"])
    out["dir"] = d
    return out


def decode_video(path):
    """Decode every video frame; return (count, last frame as RGB array, all pts)."""
    with av.open(str(path)) as c:
        last, pts = None, []
        for frame in c.decode(video=0):
            last = frame
            pts.append(frame.pts)
        return len(pts), last.to_ndarray(format="rgb24"), pts


def decode_audio(path):
    """Decode the first audio stream as float32 (channels, samples); also its rate."""
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        chunks = [f.to_ndarray() for f in c.decode(st)]
        return np.concatenate(chunks, axis=1), st.codec_context.sample_rate


def tone_level(pcm, rate, freq, start, end):
    """Amplitude of a sine at `freq` in pcm[start:end] seconds (1 s windows, exact bins)."""
    seg = pcm[0, int(start * rate):int(end * rate)]
    spectrum = np.abs(np.fft.rfft(seg)) * 2 / len(seg)
    return float(spectrum[round(freq * len(seg) / rate)])


def rms(pcm, rate, start, end):
    seg = pcm[:, int(start * rate):int(end * rate)]
    return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2)))


def video_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


def write_video_only(path, width, height, seconds, fps=FPS, color=(200, 40, 40)):
    """A clip with no audio stream at all (made directly with PyAV)."""
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.codec_context.options = {"preset": "ultrafast"}
        rgb = np.zeros((height, width, 3), np.uint8)
        rgb[:] = color
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(st.encode(frame))
        out.mux(st.encode(None))


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()
