"""Joining clips into one MP4: stream copy when they allow it, otherwise a re-encode.

A stream copy (cuts only, no audio bed, clips with identical codec parameters and the
target size and rate) moves packets unchanged and is far faster. Otherwise every clip is
decoded, fitted to the target size (letterboxed, never stretched) and rate, joined with
cuts or crossfades, its sound laid on the same timeline, an optional bed mixed under it,
and the result encoded once.
"""
from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from ..errors import MediaError
from .audio import AUDIO_RATE, decode_audio, fit_length, samples_at
from .encode import BT709, MUX_OPTIONS, RANGE_MPEG, Mp4Writer
from .files import atomic_output, checked_input, failures
from .probing import ClipScan, probe, scan_clip
from .yuv import YuvPicture, even, even_down


@dataclass(frozen=True)
class AudioBed:
    """A sound laid under a whole assembly at `volume`; `duck` scales the clips' own sound."""

    path: str
    volume: float = 1.0
    duck: float | None = None
    loop: bool = False         # repeat it to the end of the assembly
    fade: float | None = None  # fade out over the last seconds of the bed or the assembly


@dataclass(frozen=True)
class Assembly:
    duration: float
    reencoded: bool


def _as_fraction(fps) -> Fraction:
    if isinstance(fps, Fraction):
        q = fps
    elif isinstance(fps, int):
        q = Fraction(fps)
    else:
        q = Fraction(float(fps)).limit_denominator(1001)
    if q <= 0:
        raise MediaError(f"frame rate must be positive, got {fps!r}")
    return q


def _parse_transitions(transitions, n_clips: int) -> list[tuple[str, float]]:
    """One (kind, seconds) per join, from one transition for all or one per join."""
    joins = n_clips - 1

    def one(item):
        if isinstance(item, str):
            kind, seconds = item, 0.0
        elif isinstance(item, dict):
            kind, seconds = item.get("kind"), item.get("seconds", 0.0)
        elif hasattr(item, "kind") or hasattr(item, "type"):
            kind = getattr(item, "kind", None) or item.type
            seconds = getattr(item, "seconds", 0.0) or 0.0
        else:
            item = tuple(item)
            if not item or len(item) > 2:
                raise MediaError(f"bad transition {item!r}: expected (kind, seconds)")
            kind = item[0]
            seconds = item[1] if len(item) > 1 else 0.0
        kind = str(kind).lower()
        if kind not in ("cut", "crossfade"):
            raise MediaError(f"bad transition kind {kind!r}: use 'cut' or 'crossfade'")
        try:
            seconds = float(seconds or 0.0)
        except (TypeError, ValueError):
            raise MediaError(f"bad transition length {seconds!r}: expected seconds") from None
        if kind == "crossfade" and not seconds > 0:
            raise MediaError(f"a crossfade needs a positive length, got {seconds!r} s")
        return kind, seconds

    if transitions is None:
        transitions = ()
    single = isinstance(transitions, str) or (
        isinstance(transitions, tuple) and transitions and isinstance(transitions[0], str)
        and (len(transitions) == 1 or not isinstance(transitions[1], str)))
    if single:  # one transition for every join
        return [one(transitions)] * joins
    items = list(transitions)
    if not items:
        return [("cut", 0.0)] * joins
    if len(items) != joins:
        raise MediaError(f"{n_clips} clips need {joins} transition(s), got {len(items)}")
    return [one(t) for t in items]


# --------------------------------------------------------------------------- stream copy


def _can_copy(scans, joins, width, height, fps: Fraction, bed) -> bool:
    if bed is not None or any(kind != "cut" for kind, _ in joins):
        return False
    first = scans[0]
    for s in scans:
        pr = s.probe
        if s.v_sig != first.v_sig or s.a_sig != first.a_sig or not s.first_is_key:
            return False
        if (pr.width, pr.height) != (width, height) or abs(pr.fps - float(fps)) > 1e-3 * float(fps):
            return False
    return True


def _remux(scans, tmp) -> None:
    """Concatenate the clips' packets, shifting their timestamps onto one timeline."""
    has_audio = scans[0].a_sig is not None
    out = av.open(tmp, "w", format="mp4", container_options=MUX_OPTIONS)
    try:
        with av.open(scans[0].probe.path) as first:
            ovs = out.add_stream_from_template(first.streams.video[0])
            oas = out.add_stream_from_template(first.streams.audio[0]) if has_audio else None
        offset = Fraction(0)
        last_adts = None
        for s in scans:
            with av.open(s.probe.path) as c:
                vs = c.streams.video[0]
                streams = [vs]
                a_shift = a_end = None
                if has_audio:
                    aus = c.streams.audio[0]
                    streams.append(aus)
                    atb = aus.time_base
                    a_shift = round((offset - Fraction(s.v_start)) / atb)
                    a_end = round((Fraction(s.v_start) + s.v_len) / atb)
                v_shift = round(offset / vs.time_base) - s.v_start_pts
                for pkt in c.demux(streams):
                    if pkt.size == 0 or pkt.pts is None:
                        continue
                    if pkt.stream.type == "video":
                        pkt.pts += v_shift
                        if pkt.dts is not None:
                            pkt.dts += v_shift
                        pkt.stream = ovs
                    else:
                        if pkt.pts >= a_end:  # audio running past this clip's picture
                            continue
                        dts = (pkt.dts if pkt.dts is not None else pkt.pts) + a_shift
                        if last_adts is not None and dts <= last_adts:
                            continue  # encoder priming overlapping the previous clip
                        pkt.pts += a_shift
                        pkt.dts = dts
                        last_adts = dts
                        pkt.stream = oas
                    out.mux(pkt)
            offset += s.v_len
        out.close()
    except BaseException:
        with suppress(Exception):  # the error that stopped the copy matters, not this one
            out.close()
        raise


# --------------------------------------------------------------------------- re-encode


def _clip_pictures(scan: ClipScan, n: int, width: int, height: int, fps: Fraction):
    """Yield exactly n yuv420p arrays of the clip at the target size and rate."""
    p = scan.probe.path
    black = YuvPicture(width, height)
    black.Y[:], black.U[:], black.V[:] = 16, 128, 128
    with av.open(p) as c, failures(p, "decoding the video"):
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        t0 = scan.v_start
        frames = c.decode(vs)
        count = 0

        def source():
            nonlocal count
            for frame in frames:
                t = frame.time - t0 if frame.time is not None else count / float(fps)
                count += 1
                yield t, frame

        src = source()
        nxt = next(src, None)
        cur = None
        cur_pic = None
        half = 0.5 / float(fps)
        for j in range(n):
            t = j / float(fps)
            changed = False
            while nxt is not None and (cur is None or nxt[0] <= t + half - 1e-9):
                cur, nxt = nxt, next(src, None)
                changed = True
            if cur is None:
                raise MediaError(f"{p}: no video frame could be decoded")
            if changed or cur_pic is None:
                cur_pic = _fit_picture(cur[1], width, height, black)
            yield cur_pic


def _fit_picture(frame, width, height, black: YuvPicture) -> np.ndarray:
    """Scale to fit inside width x height keeping aspect, centred on black, as yuv420p."""
    sw, sh = frame.width, frame.height
    scale = min(width / sw, height / sh)
    tw = min(width, max(2, even(sw * scale)))
    th = min(height, max(2, even(sh * scale)))
    if (tw, th) == (sw, sh) and frame.format.name == "yuv420p":
        scaled = frame
    else:
        scaled = frame.reformat(tw, th, "yuv420p", interpolation="BICUBIC",
                                dst_color_range=RANGE_MPEG, threads=1)
    arr = scaled.to_ndarray()
    if (tw, th) == (width, height):
        return arr
    patch = YuvPicture(tw, th, arr.reshape(-1))
    pic = YuvPicture(width, height, black.buf.copy())
    pic.paste(even_down((width - tw) / 2), even_down((height - th) / 2), patch)
    return pic.array


def _blend(a: np.ndarray, b: np.ndarray, k: int, c: int) -> np.ndarray:
    """Frame k of a c-frame crossfade from picture a to picture b (8-bit fixed point)."""
    wb = round(256 * (k + 1) / (c + 1))
    mixed = a.astype(np.uint16) * (256 - wb) + b.astype(np.uint16) * wb + 128
    return (mixed >> 8).astype(np.uint8)


def _ramp(n: int, rising: bool) -> np.ndarray:
    r = (np.arange(n, dtype=np.float32) + 0.5) / max(n, 1)
    return r if rising else 1.0 - r


def _bed_track(bed: AudioBed, n_samples: int) -> np.ndarray:
    """The bed as n_samples of PCM at its volume: looped if asked, faded out if asked, else
    padded with silence where it is shorter than the assembly."""
    pcm, _ = decode_audio(bed.path)
    length = pcm.shape[1]
    if bed.loop and 0 < length < n_samples:
        pcm = np.tile(pcm, (1, -(-n_samples // length)))
        length = n_samples
    pcm = fit_length(pcm, n_samples)
    if bed.fade:
        end = min(length, n_samples)
        n = min(end, max(1, round(bed.fade * AUDIO_RATE)))
        pcm[:, end - n:end] *= _ramp(n, False)
    return pcm * np.float32(bed.volume)


def _reencode(scans, joins, width, height, fps: Fraction, bed, tmp) -> None:
    counts = [max(1, round(s.v_len * fps)) for s in scans]
    fades = [round(sec * fps) if kind == "crossfade" else 0 for kind, sec in joins]
    for j, c in enumerate(fades):
        if joins[j][0] == "crossfade" and c < 1:
            c = fades[j] = 1
        if c > min(counts[j], counts[j + 1]):
            raise MediaError(
                f"crossfade of {joins[j][1]:g} s between {scans[j].probe.path} and "
                f"{scans[j + 1].probe.path} is longer than one of the clips")
    for i in range(1, len(scans) - 1):
        if fades[i - 1] + fades[i] > counts[i]:
            raise MediaError(f"{scans[i].probe.path}: its two crossfades overlap "
                             f"({(fades[i - 1] + fades[i]) / fps:.2f} s of a "
                             f"{counts[i] / fps:.2f} s clip)")
    starts = [0]
    for i in range(len(scans) - 1):
        starts.append(starts[-1] + counts[i] - fades[i])
    total = starts[-1] + counts[-1]
    n_samples = samples_at(total, fps)

    # Audio: every clip's sound (or silence) laid on the timeline, crossfaded, then the bed.
    mix = np.zeros((2, n_samples), np.float32)
    for i, s in enumerate(scans):
        a0 = samples_at(starts[i], fps)
        a1 = samples_at(starts[i] + counts[i], fps)
        if s.a_sig is None:
            continue
        pcm, a_start = decode_audio(s.probe.path, stream_required=False)
        if a_start is not None:
            lead = round((a_start - s.v_start) * AUDIO_RATE)
            if lead > 0:
                pcm = np.concatenate([np.zeros((2, lead), np.float32), pcm], axis=1)
            elif lead < 0:
                pcm = pcm[:, -lead:]
        pcm = fit_length(pcm, a1 - a0)
        if i > 0 and fades[i - 1]:
            n_in = samples_at(starts[i] + fades[i - 1], fps) - a0
            pcm[:, :n_in] *= _ramp(n_in, True)
        if i < len(scans) - 1 and fades[i]:
            n_out = a1 - samples_at(starts[i + 1], fps)
            pcm[:, a1 - a0 - n_out:] *= _ramp(n_out, False)
        mix[:, a0:a1] += pcm
    if bed is not None:
        bed_pcm = _bed_track(bed, n_samples)
        if bed.duck is not None:
            mix *= np.float32(bed.duck)
        mix += bed_pcm
    np.clip(mix, -1.0, 1.0, out=mix)

    colors = scans[0].colors
    if any(v in (None, 2) for v in colors):  # unspecified: assume HD (BT.709)
        colors = (BT709, BT709, BT709)
    # mbtree=0: this libx264 build's MB-tree code reads uninitialised memory, which makes the
    # output vary from run to run; without it the encode is byte-for-byte reproducible.
    writer = Mp4Writer(tmp, width, height, fps, mix, preset="veryfast", crf=18,
                       gop=max(1, round(2 * fps)), colors=colors, x264_params="mbtree=0")
    try:
        tail: list[np.ndarray] = []
        for i, s in enumerate(scans):
            c_in = fades[i - 1] if i > 0 else 0
            c_out = fades[i] if i < len(scans) - 1 else 0
            new_tail = []
            for k, pic in enumerate(_clip_pictures(s, counts[i], width, height, fps)):
                if k < c_in:
                    writer.video(_blend(tail[k], pic, k, c_in))
                elif k >= counts[i] - c_out:
                    new_tail.append(pic.copy())
                else:
                    writer.video(pic)
            tail = new_tail
        writer.finish()
    except BaseException:
        writer.abort()
        raise


def assemble(clips, dest, *, transitions=(), width, height, fps, bed=None,
             force_reencode=False) -> Assembly:
    """Join clips into one MP4: stream copy when possible, otherwise normalise and re-encode.

    `force_reencode` normalises and re-encodes even when a stream copy would do.
    """
    paths = [os.fspath(c) for c in (clips or ())]
    if not paths:
        raise MediaError(f"{os.fspath(dest)}: nothing to assemble: no clips given")
    width, height = int(width), int(height)
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise MediaError(f"{os.fspath(dest)}: target size {width}x{height} must be even and "
                         f"at least 16x16")
    q = _as_fraction(fps)
    joins = _parse_transitions(transitions, len(paths))
    scans = [scan_clip(p) for p in paths]
    if bed is not None:
        checked_input(bed.path)
    copy = not force_reencode and _can_copy(scans, joins, width, height, q, bed)
    with atomic_output(dest, ".mp4") as tmp:
        with failures(dest, "assembling"):
            if copy:
                _remux(scans, tmp)
            else:
                _reencode(scans, joins, width, height, q, bed, tmp)
        result = probe(tmp)
    return Assembly(duration=result.duration, reencoded=not copy)
