"""All audio and video work of wanflow, through PyAV (no ffmpeg binary needed).

This is the only module of the project that imports ``av``, ``PIL`` and ``numpy``.
Every failure a user can cause (missing, empty, truncated or undecodable file, a file
outside the API's limits) is raised as :class:`wanflow.errors.MediaError` whose message
names the file and what is wrong. Every file written goes to a temporary file in the
destination's directory first and is moved into place with ``os.replace``: on failure
nothing is left at the destination and no temporary file stays behind.

Outputs are deterministic: the same inputs give byte-identical files (single-threaded
libx264, ffmpeg's native AAC encoder, ``fflags=+bitexact`` so that no varying tag or
creation time is written).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import MediaError

__all__ = [
    "Probe", "probe", "PreviewCard", "render_preview", "extract_frame", "thumbnail",
    "AudioBed", "Assembly", "assemble", "check_image", "check_audio", "check_video",
    "media_duration", "write_tone", "write_card_image", "image_size",
]

AUDIO_RATE = 48000
AAC_FRAME = 1024
_MUX_OPTIONS = {"movflags": "+faststart", "fflags": "+bitexact"}
_STILL_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "gif", "tty")
_BT709 = 1  # AVCOL_SPC/PRI/TRC_BT709
_RANGE_MPEG = 1


# --------------------------------------------------------------------------- helpers


def _name(path) -> str:
    return os.fspath(path)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().rstrip(".")


@contextmanager
def _failures(path, doing: str):
    """Turn library errors raised while `doing` something with `path` into MediaError."""
    try:
        yield
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError, MemoryError,
            Image.DecompressionBombError) as exc:
        raise MediaError(f"{_name(path)}: {doing} failed: {_reason(exc)}") from None


@contextmanager
def _atomic(dest, ext: str | None = None):
    """Yield a temporary path next to `dest`; move it onto `dest` when the block succeeds.

    On any failure the temporary file is removed and `dest` is left untouched.
    """
    dest = _name(dest)
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise MediaError(f"{dest}: cannot write: directory {directory} does not exist")
    if os.path.isdir(dest):
        raise MediaError(f"{dest}: cannot write: it is a directory")
    base = os.path.basename(dest)
    if ext is None:
        ext = os.path.splitext(base)[1]
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.part{ext}")
    try:
        yield tmp
        with _failures(dest, "writing"):
            os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check_input(path) -> str:
    p = _name(path)
    if not os.path.exists(p):
        raise MediaError(f"{p}: file does not exist")
    if os.path.isdir(p):
        raise MediaError(f"{p}: is a directory, not a media file")
    if os.path.getsize(p) == 0:
        raise MediaError(f"{p}: file is empty (0 bytes)")
    return p


def _open(path):
    p = _check_input(path)
    try:
        return av.open(p, "r", metadata_errors="replace")
    except av.FFmpegError as exc:
        raise MediaError(f"{p}: not a readable audio/video file ({_reason(exc)})") from None
    except OSError as exc:
        raise MediaError(f"{p}: cannot open: {_reason(exc)}") from None


def _even_down(x) -> int:
    return int(x) // 2 * 2


def _even(x) -> int:
    return int(round(x / 2.0)) * 2


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


# --------------------------------------------------------------------------- probing


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
class _Scan:
    """What `probe` learns about a clip, plus what `assemble` needs to decide on a copy."""

    probe: Probe
    format_name: str
    v_start: float          # first video pts, seconds
    v_len: Fraction         # demuxed video length, seconds
    v_start_pts: int
    first_is_key: bool
    v_sig: tuple
    a_sig: tuple | None
    colors: tuple


def _scan(path) -> _Scan:
    p = _check_input(path)
    size = os.path.getsize(p)
    container = _open(p)
    with container, _failures(p, "reading the video"):
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
        frame_ticks = int(round(1 / (float(rate) * vtb))) if rate and vtb else 1

        v_first = v_end = None
        v_count = 0
        first_is_key = None
        head, tail = [], []
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
        if v_count == 0 or v_first is None:
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

        # The first and the last frames must actually decode.
        vcc.thread_type = "AUTO"
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
        return _Scan(probe=probe_, format_name=fmt, v_start=float(v_first * vtb),
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
    return _scan(path).probe


def media_duration(path) -> float:
    """Duration in seconds of any audio or video file."""
    container = _open(path)
    p = _name(path)
    with container, _failures(p, "reading"):
        if container.duration:
            return container.duration / 1e6
        streams = [s for s in container.streams if s.type in ("audio", "video")]
        if not streams:
            raise MediaError(f"{p}: has no audio or video stream")
        end = {}
        start = {}
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


# --------------------------------------------------------------------------- audio


def _decode_audio(path, *, stream_required=True) -> tuple[np.ndarray, float | None]:
    """Decode the first audio stream as float32 (2, n) at 48 kHz; also its start time."""
    container = _open(path)
    p = _name(path)
    with container, _failures(p, "decoding the audio"):
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


def _fit_length(pcm: np.ndarray, n: int) -> np.ndarray:
    """Trim or pad with silence to exactly n samples."""
    if pcm.shape[1] >= n:
        return np.ascontiguousarray(pcm[:, :n])
    out = np.zeros((2, n), np.float32)
    out[:, :pcm.shape[1]] = pcm
    return out


def _samples_at(frame_index: int, fps: Fraction) -> int:
    return int(round(Fraction(frame_index) * AUDIO_RATE / fps))


# --------------------------------------------------------------------------- writer


class _Writer:
    """H.264 + AAC MP4 writer fed with yuv420p arrays and a float32 (2, n) PCM track."""

    def __init__(self, path, width, height, fps: Fraction, *, preset, gop, crf=None, qp=None,
                 colors=(_BT709, _BT709, _BT709), x264_params=None):
        self.width, self.height, self.fps = width, height, fps
        self.container = av.open(path, "w", format="mp4", container_options=_MUX_OPTIONS)
        try:
            vs = self.container.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            cc = vs.codec_context
            cc.time_base = 1 / fps
            cc.gop_size = gop
            cc.thread_count = 1
            cc.color_range = _RANGE_MPEG
            cc.colorspace, cc.color_primaries, cc.color_trc = colors
            opts = {"preset": preset}
            if qp is not None:  # constant quantiser: skips x264's complexity analysis
                opts["qp"] = str(qp)
            else:
                opts["crf"] = str(crf)
            if x264_params:
                opts["x264-params"] = x264_params
            cc.options = opts
            aus = self.container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
            aus.codec_context.bit_rate = 128000
            aus.codec_context.time_base = Fraction(1, AUDIO_RATE)
        except BaseException:
            self.container.close()
            raise
        self.vs, self.aus = vs, aus
        self.vpts = 0
        self.apos = 0
        self.pcm = None

    def set_audio(self, pcm: np.ndarray):
        self.pcm = np.ascontiguousarray(pcm, dtype=np.float32)

    def video(self, yuv):
        """Encode one picture: a yuv420p array (h*3/2, w) or a yuv420p av.VideoFrame."""
        frame = yuv if isinstance(yuv, av.VideoFrame) else av.VideoFrame.from_ndarray(
            yuv, format="yuv420p")
        frame.pts = self.vpts
        frame.time_base = self.vs.codec_context.time_base
        self.vpts += 1
        self.container.mux(self.vs.encode(frame))
        self._audio_until(_samples_at(self.vpts, self.fps), final=False)

    def _audio_until(self, upto: int, *, final: bool):
        pcm = self.pcm
        upto = min(upto, pcm.shape[1])
        while self.apos < upto:
            n = min(AAC_FRAME, pcm.shape[1] - self.apos)
            if n < AAC_FRAME and not final:
                break
            if self.apos + n > upto and not final:
                break
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, self.apos:self.apos + n]),
                format="fltp", layout="stereo")
            frame.sample_rate = AUDIO_RATE
            frame.pts = self.apos
            frame.time_base = Fraction(1, AUDIO_RATE)
            self.apos += n
            self.container.mux(self.aus.encode(frame))

    def finish(self):
        self.container.mux(self.vs.encode(None))
        self._audio_until(self.pcm.shape[1], final=True)
        self.container.mux(self.aus.encode(None))
        self.container.close()

    def abort(self):
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the original error matters, not this one
            pass


# --------------------------------------------------------------------------- colour


def _rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.709 limited-range conversion of an (h, w, 3) uint8 array with even h, w."""
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    Y = 16.0 + y * (219.0 / 255.0)
    h, w = rgb.shape[:2]
    sub = f.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    rs, gs, bs = sub[..., 0], sub[..., 1], sub[..., 2]
    ys = 0.2126 * rs + 0.7152 * gs + 0.0722 * bs
    U = 128.0 + (bs - ys) / 1.8556 * (224.0 / 255.0)
    V = 128.0 + (rs - ys) / 1.5748 * (224.0 / 255.0)

    def q(a):
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)

    return q(Y), q(U), q(V)


def _color_yuv(rgb) -> tuple[int, int, int]:
    Y, U, V = _rgb_to_yuv(np.array(rgb, np.uint8).reshape(1, 1, 3).repeat(2, 0).repeat(2, 1))
    return int(Y[0, 0]), int(U[0, 0]), int(V[0, 0])


class _Yuv:
    """A yuv420p picture as one flat buffer with plane views."""

    def __init__(self, width, height, buf=None):
        self.w, self.h = width, height
        n = width * height
        self.buf = np.empty(n * 3 // 2, np.uint8) if buf is None else buf
        self.Y = self.buf[:n].reshape(height, width)
        self.U = self.buf[n:n + n // 4].reshape(height // 2, width // 2)
        self.V = self.buf[n + n // 4:].reshape(height // 2, width // 2)

    @classmethod
    def on_frame(cls, frame) -> "_Yuv":
        """Writable plane views straight onto a yuv420p av.VideoFrame's buffers."""
        pic = cls.__new__(cls)
        pic.w, pic.h, pic.buf = frame.width, frame.height, None
        views = []
        for k, plane in enumerate(frame.planes[:3]):
            pw, ph = (pic.w, pic.h) if k == 0 else (pic.w // 2, pic.h // 2)
            views.append(np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:ph, :pw])
        pic.Y, pic.U, pic.V = views
        return pic

    @property
    def array(self) -> np.ndarray:
        return self.buf.reshape(self.h * 3 // 2, self.w)

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> "_Yuv":
        h, w = rgb.shape[:2]
        pic = cls(w, h)
        pic.Y[:], pic.U[:], pic.V[:] = _rgb_to_yuv(rgb)
        return pic

    def fill(self, x0, y0, x1, y1, yuv):
        """Paint a rectangle (all coordinates even)."""
        if x1 <= x0 or y1 <= y0:
            return
        self.Y[y0:y1, x0:x1] = yuv[0]
        self.U[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = yuv[1]
        self.V[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = yuv[2]

    def paste(self, x0, y0, patch: "_Yuv"):
        self.Y[y0:y0 + patch.h, x0:x0 + patch.w] = patch.Y
        cy, cx = y0 // 2, x0 // 2
        self.U[cy:cy + patch.h // 2, cx:cx + patch.w // 2] = patch.U
        self.V[cy:cy + patch.h // 2, cx:cx + patch.w // 2] = patch.V


# --------------------------------------------------------------------------- text


@functools.lru_cache(maxsize=64)
def _font_cached(size: int):
    return ImageFont.load_default(size=size)


def _font(size: int):
    return _font_cached(max(8, int(size)))


def _wrap(text: str, font, max_width: float) -> list[str]:
    """Greedy word wrap; words wider than a line (or unspaced scripts) break by character."""
    lines: list[str] = []
    for para in str(text).splitlines() or [""]:
        line = ""
        for word in para.split():
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
                line = ""
            while font.getlength(word) > max_width and len(word) > 1:
                lo, hi = 1, len(word)
                while lo < hi:  # longest prefix that fits
                    mid = (lo + hi + 1) // 2
                    if font.getlength(word[:mid]) <= max_width:
                        lo = mid
                    else:
                        hi = mid - 1
                lines.append(word[:lo])
                word = word[lo:]
            line = word
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _ellipsize(text: str, font, max_width: float) -> str:
    if font.getlength(text) <= max_width:
        return text
    while text and font.getlength(text + "…") > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


def _line_height(font) -> int:
    ascent, descent = font.getmetrics()
    return _even(ascent + descent)


# --------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class PreviewCard:
    scene: str
    shot: str
    take: int
    prompt: str
    duration: float
    width: int
    height: int
    fps: int
    model: str = ""
    label: str = "PREVIEW"


_BG = (20, 24, 33)
_PANEL = (34, 40, 52)
_TRACK = (52, 60, 76)
_ACCENT = (245, 158, 11)
_BLOCK = (56, 189, 248)
_TEXT = (235, 238, 243)
_DIM = (148, 160, 180)


def _clock(centis: int) -> str:
    return f"{centis // 6000 % 100:02d}:{centis // 100 % 60:02d}.{centis % 100:02d}"


class _CardPainter:
    """Static layout drawn once with Pillow; moving parts painted per frame in YUV."""

    def __init__(self, card: PreviewCard, n_frames: int):
        w, h = card.width, card.height
        self.card, self.n = card, n_frames
        self.c_accent = _color_yuv(_ACCENT)
        self.c_block = _color_yuv(_BLOCK)
        self.clock_slots, self.frame_slots, self.glyphs, self.tc_y0 = [], [], [], 0
        u = min(w, h)
        if u < 64:
            self._tiny(w, h)
            return
        m = max(8, _even(u * 0.05))
        img = Image.new("RGB", (w, h), _BG)
        draw = ImageDraw.Draw(img)

        # Bottom panel: moving-block lane, timecode line, progress bar.
        f_tc = _font(max(10, u // 20))
        tc_h = _line_height(f_tc) + 2
        bar_h = max(4, _even(u / 70))
        lane_h = max(6, _even(u / 30))
        gap = max(4, _even(u / 60))
        bar_y1 = h - m
        bar_y0 = bar_y1 - bar_h
        tc_y1 = bar_y0 - gap
        tc_y0 = tc_y1 - tc_h
        lane_y1 = tc_y0 - gap
        lane_y0 = lane_y1 - lane_h
        panel_y0 = max(0, _even_down(lane_y0 - gap))
        draw.rectangle((0, panel_y0, w - 1, h - 1), fill=_PANEL)
        x0, x1 = m, w - m
        self.track = (x0, x1)
        draw.rectangle((x0, bar_y0, x1 - 1, bar_y1 - 1), fill=_TRACK)
        draw.rectangle((x0, lane_y0, x1 - 1, lane_y1 - 1), fill=_BG)
        self.bar = (bar_y0, bar_y1)
        self.lane = (lane_y0, lane_y1)
        self.block_w = max(8, _even(w / 12))

        # Timecode: dynamic digits are glyph patches at even x; the rest is static.
        cell = _even(max(f_tc.getlength(d) for d in "0123456789") + 1)
        self.glyphs = []
        for d in "0123456789":
            g = Image.new("RGB", (cell, tc_h), _PANEL)
            ImageDraw.Draw(g).text((0, 0), d, font=f_tc, fill=_TEXT)
            self.glyphs.append(_Yuv.from_rgb(np.asarray(g)))
        self.clock_slots, x = self._layout(draw, f_tc, m, tc_y0, "##:##.##", cell, _TEXT)
        self.clock_slots = [sx if sx + cell <= w else None for sx in self.clock_slots]
        total = _clock(int(round(card.duration * 100)))
        _, x = self._layout(draw, f_tc, x, tc_y0, f" / {total}", cell, _DIM)
        digits = len(str(n_frames))
        template = "frame " + "#" * digits + f" / {n_frames}"
        width = sum(cell if c == "#" else _even(f_tc.getlength(c) + 1) for c in template)
        self.frame_slots = []
        if _even_down(w - m - width) >= x + cell:  # only when it fits beside the clock
            self.frame_slots, _ = self._layout(draw, f_tc, _even_down(w - m - width), tc_y0,
                                               template, cell, _DIM)
        self.tc_y0 = tc_y0

        # Header: label badge, scene/shot/take, model and format.
        f_label = _font(max(12, u // 11))
        f_head = _font(max(10, u // 17))
        f_info = _font(max(9, u // 28))
        label = card.label or "PREVIEW"
        pad = max(4, u // 60)
        lh = _line_height(f_label)
        lw = int(f_label.getlength(label))
        y = m
        draw.rectangle((m, y, m + lw + 2 * pad, y + lh + pad), fill=_ACCENT)
        draw.text((m + pad, y + pad // 2), label, font=f_label, fill=(0, 0, 0))
        # The label again at the top right, small, so a cropped view still shows it.
        small = _ellipsize(label, f_info, w / 3)
        draw.text((w - m - f_info.getlength(small), y), small, font=f_info, fill=_ACCENT)
        y += lh + pad + gap
        head = f"Scene {card.scene}  ·  Shot {card.shot}  ·  Take {card.take}"
        draw.text((m, y), _ellipsize(head, f_head, w - 2 * m), font=f_head, fill=_TEXT)
        y += _line_height(f_head) + gap // 2
        info = [card.model] if card.model else []
        info += [f"{w}x{h}", f"{card.fps} fps", f"{card.duration:.2f} s"]
        draw.text((m, y), _ellipsize("  ·  ".join(info), f_info, w - 2 * m), font=f_info,
                  fill=_DIM)
        y += _line_height(f_info) + gap
        draw.line((m, y, w - m, y), fill=_TRACK, width=max(1, u // 360))
        y += gap

        # Prompt, word-wrapped into the space left.
        f_prompt = _font(max(9, u // 24))
        ph = int(_line_height(f_prompt) * 1.15)
        avail = panel_y0 - gap - y
        lines = _wrap(card.prompt, f_prompt, w - 2 * m)
        fit = max(0, avail // ph) if ph else 0
        if len(lines) > fit:
            lines = lines[:fit]
            if lines:
                lines[-1] = _ellipsize(lines[-1] + " …", f_prompt, w - 2 * m)
        for line in lines:
            draw.text((m, y), line, font=f_prompt, fill=_TEXT)
            y += ph

        self.base = _Yuv.from_rgb(np.asarray(img))

    def _tiny(self, w, h):
        """Under 64 px no text is legible: an accent frame, the moving block and the bar."""
        img = Image.new("RGB", (w, h), _BG)
        ImageDraw.Draw(img).rectangle((0, 0, w - 1, h - 1), outline=_ACCENT, width=2)
        self.track = (2, w - 2)
        self.bar = (h - 4, h - 2)
        lane_h = max(2, _even_down(h / 4))
        self.lane = (h - 6 - lane_h, h - 6)
        self.block_w = max(2, _even(w / 8))
        self.base = _Yuv.from_rgb(np.asarray(img))

    @staticmethod
    def _layout(draw, font, x, y, template, cell, fill):
        """Draw the static characters of `template`; '#' marks a digit slot. Returns slots."""
        slots = []
        for ch in template:
            if ch == "#":
                slots.append(x)
                x += cell
            else:
                draw.text((x, y), ch, font=font, fill=fill)
                x += _even(font.getlength(ch) + 1)
        return slots, x

    def frame(self, i: int):
        """Frame i as a new yuv420p av.VideoFrame (static layer + moving parts)."""
        card, base = self.card, self.base
        frame = av.VideoFrame(base.w, base.h, "yuv420p")
        pic = _Yuv.on_frame(frame)
        np.copyto(pic.Y, base.Y)
        np.copyto(pic.U, base.U)
        np.copyto(pic.V, base.V)
        x0, x1 = self.track
        span = x1 - x0
        fill = _even_down(span * (i + 1) / self.n)
        pic.fill(x0, self.bar[0], x0 + fill, self.bar[1], self.c_accent)
        period = max(2, 2 * card.fps)
        phase = (i % period) / period
        tri = 1.0 - abs(2.0 * phase - 1.0)
        bx = x0 + _even_down(tri * (span - self.block_w))
        pic.fill(bx, self.lane[0], bx + self.block_w, self.lane[1], self.c_block)
        clock = _clock(i * 100 // card.fps).replace(":", "").replace(".", "")
        for x, d in zip(self.clock_slots, clock):
            if x is not None:
                pic.paste(x, self.tc_y0, self.glyphs[int(d)])
        number = str(i + 1).zfill(len(self.frame_slots))
        for x, d in zip(self.frame_slots, number):
            pic.paste(x, self.tc_y0, self.glyphs[int(d)])
        return frame


def render_preview(card: PreviewCard, dest, audio=None) -> None:
    """Write an H.264/AAC MP4 title card of exactly `card.duration` seconds to `dest`."""
    w, h, fps = int(card.width), int(card.height), card.fps
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise MediaError(f"{_name(dest)}: preview size {w}x{h} must be even and at least 16x16")
    if isinstance(fps, float) and fps.is_integer():
        fps = int(fps)
        card = dataclasses.replace(card, fps=fps)
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise MediaError(f"{_name(dest)}: preview frame rate must be a positive integer, got {fps!r}")
    n_frames = int(round(card.duration * fps))
    if n_frames < 1:
        raise MediaError(f"{_name(dest)}: preview duration {card.duration!r} s is too short")
    q = Fraction(fps)
    n_samples = _samples_at(n_frames, q)
    if audio is not None:
        pcm, _ = _decode_audio(audio)
        pcm = _fit_length(pcm, n_samples)
    else:
        pcm = np.zeros((2, n_samples), np.float32)
    painter = _CardPainter(card, n_frames)
    with _atomic(dest, ".mp4") as tmp, _failures(dest, "writing the preview"):
        writer = _Writer(tmp, w, h, q, preset="ultrafast", qp=28, gop=2 * fps)
        try:
            writer.set_audio(pcm)
            for i in range(n_frames):
                writer.video(painter.frame(i))
            writer.finish()
        except BaseException:
            writer.abort()
            raise


# --------------------------------------------------------------------------- frames


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


def _grab(src, which):
    p = _check_input(src)
    if isinstance(which, bool) or not (which in ("first", "last") or isinstance(which, (int, float))):
        raise MediaError(f"{p}: cannot pick frame {which!r}: use 'first', 'last' or seconds")
    container = _open(p)
    with container, _failures(p, "decoding a frame"):
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


def _save_png(rgb: np.ndarray, dest) -> None:
    with _atomic(dest, ".png") as tmp, _failures(dest, "writing the image"):
        Image.fromarray(rgb, "RGB").save(tmp, format="PNG")


def extract_frame(src, dest_png, which="last") -> None:
    """Write one frame of `src` ('first', 'last' or a time in seconds) as an RGB PNG."""
    _save_png(_grab(src, which), dest_png)


def thumbnail(src, dest_png, width=320, at="first") -> None:
    """Write a PNG of one frame scaled to `width` pixels wide (aspect kept)."""
    rgb = _grab(src, at)
    h, w = rgb.shape[:2]
    width = int(width)
    if width < 1:
        raise MediaError(f"{_name(dest_png)}: thumbnail width must be positive, got {width}")
    height = max(1, int(round(h * width / w)))
    img = Image.fromarray(rgb, "RGB").resize((width, height), Image.Resampling.LANCZOS)
    _save_png(np.asarray(img), dest_png)


# --------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class AudioBed:
    path: str
    volume: float = 1.0
    duck: float | None = None


@dataclass(frozen=True)
class Assembly:
    duration: float
    reencoded: bool


def _parse_transitions(transitions, n_clips: int) -> list[tuple[str, float]]:
    joins = n_clips - 1

    def one(item):
        if isinstance(item, str):
            kind, seconds = item, 0.0
        elif isinstance(item, dict):
            kind, seconds = item.get("kind"), item.get("seconds", 0.0)
        elif hasattr(item, "kind") or hasattr(item, "type"):
            kind = getattr(item, "kind", None) or getattr(item, "type")
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
    has_audio = scans[0].a_sig is not None
    out = av.open(tmp, "w", format="mp4", container_options=_MUX_OPTIONS)
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
                    a_shift = int(round((offset - Fraction(s.v_start)) / atb))
                    a_end = int(round((Fraction(s.v_start) + s.v_len) / atb))
                v_shift = int(round(offset / vs.time_base)) - s.v_start_pts
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
        try:
            out.close()
        except Exception:  # noqa: BLE001
            pass
        raise


def _clip_pictures(scan: _Scan, n: int, width: int, height: int, fps: Fraction):
    """Yield exactly n yuv420p arrays of the clip at the target size and rate."""
    p = scan.probe.path
    black = _Yuv(width, height)
    black.Y[:], black.U[:], black.V[:] = 16, 128, 128
    with av.open(p) as c, _failures(p, "decoding the video"):
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


def _fit_picture(frame, width, height, black: _Yuv) -> np.ndarray:
    """Scale to fit inside width x height keeping aspect, centred on black, as yuv420p."""
    sw, sh = frame.width, frame.height
    scale = min(width / sw, height / sh)
    tw = min(width, max(2, _even(sw * scale)))
    th = min(height, max(2, _even(sh * scale)))
    if (tw, th) == (sw, sh) and frame.format.name == "yuv420p":
        scaled = frame
    else:
        scaled = frame.reformat(tw, th, "yuv420p", interpolation="BICUBIC",
                                dst_color_range=_RANGE_MPEG, threads=1)
    arr = scaled.to_ndarray()
    if (tw, th) == (width, height):
        return arr
    patch = _Yuv(tw, th, arr.reshape(-1))
    pic = _Yuv(width, height, black.buf.copy())
    pic.paste(_even_down((width - tw) / 2), _even_down((height - th) / 2), patch)
    return pic.array


def _blend(a: np.ndarray, b: np.ndarray, k: int, c: int) -> np.ndarray:
    wb = int(round(256 * (k + 1) / (c + 1)))
    mixed = a.astype(np.uint16) * (256 - wb) + b.astype(np.uint16) * wb + 128
    return (mixed >> 8).astype(np.uint8)


def _ramp(n: int, rising: bool) -> np.ndarray:
    r = (np.arange(n, dtype=np.float32) + 0.5) / max(n, 1)
    return r if rising else 1.0 - r


def _reencode(scans, joins, width, height, fps: Fraction, bed, tmp) -> None:
    counts = [max(1, int(round(s.v_len * fps))) for s in scans]
    fades = [int(round(sec * fps)) if kind == "crossfade" else 0 for kind, sec in joins]
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
    n_samples = _samples_at(total, fps)

    # Audio: every clip's sound (or silence) laid on the timeline, crossfaded, then the bed.
    mix = np.zeros((2, n_samples), np.float32)
    for i, s in enumerate(scans):
        a0 = _samples_at(starts[i], fps)
        a1 = _samples_at(starts[i] + counts[i], fps)
        if s.a_sig is None:
            continue
        pcm, a_start = _decode_audio(s.probe.path, stream_required=False)
        if a_start is not None:
            lead = int(round((a_start - s.v_start) * AUDIO_RATE))
            if lead > 0:
                pcm = np.concatenate([np.zeros((2, lead), np.float32), pcm], axis=1)
            elif lead < 0:
                pcm = pcm[:, -lead:]
        pcm = _fit_length(pcm, a1 - a0)
        if i > 0 and fades[i - 1]:
            n_in = _samples_at(starts[i] + fades[i - 1], fps) - a0
            pcm[:, :n_in] *= _ramp(n_in, True)
        if i < len(scans) - 1 and fades[i]:
            n_out = a1 - _samples_at(starts[i + 1], fps)
            pcm[:, a1 - a0 - n_out:] *= _ramp(n_out, False)
        mix[:, a0:a1] += pcm
    if bed is not None:
        bed_pcm, _ = _decode_audio(bed.path)
        bed_pcm = _fit_length(bed_pcm, n_samples) * np.float32(bed.volume)
        if bed.duck is not None:
            mix *= np.float32(bed.duck)
        mix += bed_pcm
    np.clip(mix, -1.0, 1.0, out=mix)

    colors = scans[0].colors
    if any(v in (None, 2) for v in colors):  # unspecified: assume HD (BT.709)
        colors = (_BT709, _BT709, _BT709)
    # mbtree=0: this libx264 build's MB-tree code reads uninitialised memory, which makes the
    # output vary from run to run; without it the encode is byte-for-byte reproducible.
    writer = _Writer(tmp, width, height, fps, preset="veryfast", crf=18,
                     gop=max(1, int(round(2 * fps))), colors=colors, x264_params="mbtree=0")
    try:
        writer.set_audio(mix)
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
    paths = [_name(c) for c in (clips or ())]
    if not paths:
        raise MediaError(f"{_name(dest)}: nothing to assemble: no clips given")
    width, height = int(width), int(height)
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise MediaError(f"{_name(dest)}: target size {width}x{height} must be even and at least 16x16")
    q = _as_fraction(fps)
    joins = _parse_transitions(transitions, len(paths))
    scans = [_scan(p) for p in paths]
    if bed is not None:
        _check_input(bed.path)
    copy = not force_reencode and _can_copy(scans, joins, width, height, q, bed)
    with _atomic(dest, ".mp4") as tmp:
        with _failures(dest, "assembling"):
            if copy:
                _remux(scans, tmp)
            else:
                _reencode(scans, joins, width, height, q, bed, tmp)
        result = probe(tmp)
    return Assembly(duration=result.duration, reencoded=not copy)


# --------------------------------------------------------------------------- checks


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _size_problem(p, size, max_bytes) -> list[str]:
    if size > max_bytes:
        return [f"{p}: file is {_mb(size)}; the limit is {_mb(max_bytes)}"]
    return []


def check_image(path, *, min_side=360, max_side=2000, max_bytes=10 * 1024 * 1024) -> list[str]:
    """Problems that would make the API refuse this image (empty list: fine)."""
    p = _name(path)
    try:
        _check_input(p)
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
            if max(w, h) <= 4 * max_side:
                img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        problems.append(f"{p}: not a readable image ({_reason(exc)})")
    return problems


def image_size(path) -> tuple[int, int]:
    """(width, height) of an image file, honouring no EXIF rotation."""
    p = _check_input(path)
    try:
        with Image.open(p) as img:
            return img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{p}: not a readable image ({_reason(exc)})") from None


def _format_kinds(container) -> set[str]:
    return set((container.format.name or "").split(","))


def _duration_problems(p: str, seconds: float, min_seconds: float,
                       max_seconds: float) -> list[str]:
    if seconds < min_seconds:
        return [f"{p}: duration {seconds:.2f} s is shorter than the minimum of {min_seconds:g} s"]
    if seconds > max_seconds:
        return [f"{p}: duration {seconds:.2f} s is longer than the maximum of {max_seconds:g} s"]
    return []


def check_audio(path, *, min_seconds=3.0, max_seconds=30.0, max_bytes=15 * 1024 * 1024) -> list[str]:
    """Problems that would make the API refuse this audio file (empty list: fine)."""
    p = _name(path)
    try:
        container = _open(p)
    except MediaError as exc:
        return [str(exc)]
    problems = _size_problem(p, os.path.getsize(p), max_bytes)
    with container:
        kinds = _format_kinds(container)
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


def check_video(path, *, min_seconds=2.0, max_seconds=30.0, max_bytes=100 * 1024 * 1024) -> list[str]:
    """Problems that would make the API refuse this reference video (empty list: fine)."""
    p = _name(path)
    try:
        scan = _scan(p)
    except MediaError as exc:
        return [str(exc)]
    problems = _size_problem(p, scan.probe.size_bytes, max_bytes)
    if not ({"mp4", "mov"} & set(scan.format_name.split(","))):
        problems.append(f"{p}: format {scan.format_name} is not accepted; use MP4 or MOV")
    seconds = scan.probe.duration
    return problems + _duration_problems(p, seconds, min_seconds, max_seconds)


# --------------------------------------------------------------------------- generators


def write_tone(dest, seconds, *, freq=440.0, rate=48000, fmt="wav", channels=1) -> None:
    """Write a deterministic sine tone (amplitude 0.5) as WAV (pcm_s16le) or MP3."""
    fmt = str(fmt).lower()
    if fmt not in ("wav", "mp3"):
        raise MediaError(f"{_name(dest)}: tone format must be 'wav' or 'mp3', got {fmt!r}")
    if fmt == "mp3" and "libmp3lame" not in av.codecs_available:
        raise MediaError(f"{_name(dest)}: cannot write MP3: the libmp3lame encoder is not "
                         f"available in this PyAV build")
    rate, channels = int(rate), int(channels)
    n = int(round(float(seconds) * rate))
    if n < 1 or rate < 1 or channels not in (1, 2):
        raise MediaError(f"{_name(dest)}: bad tone parameters ({seconds} s, {rate} Hz, "
                         f"{channels} channels)")
    t = np.arange(n, dtype=np.float64) / rate
    wave = (0.5 * np.sin(2 * math.pi * float(freq) * t)).astype(np.float32)
    pcm = np.repeat(wave[None, :], channels, axis=0)
    layout = "mono" if channels == 1 else "stereo"
    with _atomic(dest, "." + fmt) as tmp, _failures(dest, "writing the tone"):
        if fmt == "wav":
            s16 = np.clip(np.rint(pcm.T * 32767), -32768, 32767).astype("<i2")
            import wave as _wave
            with _wave.open(tmp, "wb") as wf:
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
            size = 1152
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
        raise MediaError(f"{_name(dest)}: bad image size {width}x{height}")
    u = min(width, height)
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    m = max(2, u // 20)
    draw.rectangle((m // 2, m // 2, width - 1 - m // 2, height - 1 - m // 2),
                   outline=_ACCENT, width=max(1, u // 100))
    font = _font(max(8, u // 12))
    lh = int(_line_height(font) * 1.2)
    lines = _wrap(text, font, width - 2 * m)
    fit = max(1, (height - 2 * m) // max(1, lh))
    lines = lines[:fit]
    y = (height - lh * len(lines)) // 2
    for line in lines:
        x = (width - font.getlength(line)) / 2
        draw.text((x, y), line, font=font, fill=_TEXT)
        y += lh
    _save_png(np.asarray(img), dest)
