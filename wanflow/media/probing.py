"""Describing video files strictly: a clip that is truncated or does not decode is refused.

A probe demuxes every packet (cheap: nothing is decoded but the first frame and the frames
from the last keyframe on), so a download cut short is caught even when its header looks
complete. The same scan tells assembly whether clips can be joined by stream copy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import MediaError
from .files import checked_input, failures, open_container

# Demuxers that also open still images or text: such a "video" is refused.
_STILL_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "gif", "tty")


@dataclass(frozen=True)
class Probe:
    path: str
    duration: float
    width: int
    height: int
    fps: float
    video_codec: str
    audio_codec: str | None
    pix_fmt: str
    size_bytes: int

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


@dataclass(frozen=True)
class ClipScan:
    """What `probe` learns about a clip, plus what `assemble` needs to decide on a copy."""

    probe: Probe
    format_name: str
    v_start: float          # first video pts, seconds
    v_len: Fraction         # demuxed video length, seconds
    v_start_pts: int
    first_is_key: bool
    v_sig: tuple            # video parameters that must match for a stream copy
    a_sig: tuple | None     # the same for audio; None when there is no audio stream
    colors: tuple           # (colorspace, primaries, transfer) of the video


def scan_clip(path) -> ClipScan:
    """Read a video file through, checking it is complete and its ends decode."""
    p = checked_input(path)
    size = os.path.getsize(p)
    container = open_container(p)
    with container, failures(p, "reading the video"):
        fmt = container.format.name or ""
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing decodable"
            raise MediaError(f"{p}: not a video: it has no video stream (found {kinds})")
        vs = container.streams.video[0]
        if any(f in _STILL_FORMATS for f in fmt.split(",")):
            raise MediaError(f"{p}: is a still image or text ({fmt}), not a video")
        vcc = vs.codec_context
        if vcc is None or not vcc.name or not vs.width or not vs.height:
            raise MediaError(f"{p}: video stream has no usable codec or size")
        aus = container.streams.audio[0] if container.streams.audio else None
        vtb = vs.time_base
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        frame_ticks = round(1 / (float(rate) * vtb)) if rate and vtb else 1

        v_first: int | None = None
        v_end: int | None = None
        v_count = 0
        first_is_key = None
        head: list[av.Packet] = []
        tail: list[av.Packet] = []
        a_count = 0
        for pkt in container.demux([vs] + ([aus] if aus is not None else [])):
            if pkt.size == 0:
                continue
            if pkt.is_corrupt:
                article = "an" if pkt.stream.type == "audio" else "a"
                raise MediaError(f"{p}: truncated or damaged: {article} {pkt.stream.type} "
                                 f"packet is incomplete or corrupt")
            if pkt.stream.type == "audio":
                a_count += 1
                continue
            v_count += 1
            if first_is_key is None:
                first_is_key = bool(pkt.is_keyframe)
            if len(head) < 16:
                head.append(pkt)
            if pkt.pts is not None:
                dur = pkt.duration or frame_ticks
                v_first = pkt.pts if v_first is None else min(v_first, pkt.pts)
                v_end = pkt.pts + dur if v_end is None else max(v_end, pkt.pts + dur)
            if pkt.is_keyframe:
                tail = [pkt]
            else:
                tail.append(pkt)
        if v_count == 0 or v_first is None or v_end is None:   # both are set together
            raise MediaError(f"{p}: video stream contains no frames")
        # Containers with a sample index (MP4/MOV) say exactly how many packets to expect.
        for kind, st, got in (("video", vs, v_count), ("audio", aus, a_count)):
            if st is not None and st.frames and got < st.frames:
                raise MediaError(f"{p}: truncated: the index lists {st.frames} {kind} packets "
                                 f"but only {got} are in the file")

        demuxed = Fraction(v_end - v_first) * vtb
        if vs.duration:  # the video track's own length: compare closely (3 frames)
            header = float(vs.duration * vtb)
            tolerance = max(0.1, 3.0 * frame_ticks * float(vtb))
        elif container.duration:  # may include a longer audio track: be lenient
            header = container.duration / 1e6
            tolerance = max(0.5, 0.02 * header)
        else:
            header = float(demuxed)
            tolerance = 0.0
        if float(demuxed) < header - tolerance:
            raise MediaError(
                f"{p}: truncated or damaged: the header promises {header:.2f} s of video "
                f"but only {float(demuxed):.2f} s is present")

        # The first and the last frames must actually decode. On this thread: too few
        # frames are decoded for frame threads (one per core) to pay for their start-up.
        if not _decode_some(vcc, head, stop_at_first=True):
            raise MediaError(f"{p}: the first video frame cannot be decoded")
        vcc.flush_buffers()
        if not _decode_some(vcc, tail, stop_at_first=False):
            raise MediaError(f"{p}: the last video frames cannot be decoded")

        duration = container.duration / 1e6 if container.duration else float(demuxed)
        fps = float(rate) if rate else v_count / max(float(demuxed), 1e-9)
        pix_fmt = vcc.pix_fmt or (vcc.format.name if vcc.format else "")
        probe_ = Probe(
            path=p, duration=duration, width=vs.width, height=vs.height, fps=fps,
            video_codec=vcc.name, audio_codec=aus.codec_context.name if aus else None,
            pix_fmt=pix_fmt or "", size_bytes=size)
        v_sig = (vcc.name, vs.width, vs.height, pix_fmt, vtb, rate, vcc.profile,
                 bytes(vcc.extradata or b""), vs.codec_tag)
        a_sig = None
        if aus is not None:
            acc = aus.codec_context
            a_sig = (acc.name, acc.sample_rate, acc.channels, aus.time_base,
                     bytes(acc.extradata or b""), acc.profile)
        colors = (vcc.colorspace, vcc.color_primaries, vcc.color_trc)
        return ClipScan(probe=probe_, format_name=fmt, v_start=float(v_first * vtb),
                        v_len=demuxed, v_start_pts=v_first, first_is_key=bool(first_is_key),
                        v_sig=v_sig, a_sig=a_sig, colors=colors)


def _decode_some(ctx, packets, *, stop_at_first: bool) -> int:
    """Decode `packets` then drain; return the number of frames produced."""
    n = 0
    for pkt in packets:
        n += len(ctx.decode(pkt))
        if stop_at_first and n:
            break
    n += len(ctx.decode(None))
    return n


def probe(path) -> Probe:
    """Describe a video file after checking that it is complete and decodable."""
    return scan_clip(path).probe


def media_duration(path) -> float:
    """Duration in seconds of any audio or video file."""
    container = open_container(path)
    p = os.fspath(path)
    with container, failures(p, "reading"):
        if container.duration:
            return container.duration / 1e6
        streams = [s for s in container.streams if s.type in ("audio", "video")]
        if not streams:
            raise MediaError(f"{p}: has no audio or video stream")
        end: dict[int, float] = {}
        start: dict[int, float] = {}
        for pkt in container.demux(streams):
            if pkt.pts is None or pkt.size == 0:
                continue
            tb = pkt.time_base
            s = float(pkt.pts * tb)
            e = float((pkt.pts + (pkt.duration or 0)) * tb)
            start[pkt.stream.index] = min(start.get(pkt.stream.index, s), s)
            end[pkt.stream.index] = max(end.get(pkt.stream.index, e), e)
        if not end:
            raise MediaError(f"{p}: contains no audio or video data")
        return max(end[i] - start[i] for i in end)
