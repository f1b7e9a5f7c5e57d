"""The one MP4 writer (H.264 video + AAC audio), shared by previews and assembly.

Output is deterministic: single-threaded libx264, ffmpeg's native AAC encoder, and
``fflags=+bitexact`` so that no varying tag or creation time is written.
"""
from __future__ import annotations

from contextlib import suppress
from fractions import Fraction

import av
import numpy as np

from .audio import AUDIO_RATE, samples_at

AAC_FRAME = 1024  # samples per AAC frame
MUX_OPTIONS = {"movflags": "+faststart", "fflags": "+bitexact"}
BT709 = 1  # AVCOL_SPC/PRI/TRC_BT709
RANGE_MPEG = 1  # limited ("TV") range


class Mp4Writer:
    """H.264 + AAC MP4 writer: the float32 (2, n) PCM track up front, then pictures one by one.

    Audio is encoded as the video advances, so packets reach the muxer in time order.
    """

    def __init__(self, path, width, height, fps: Fraction, pcm: np.ndarray, *, preset, gop,
                 crf=None, qp=None, colors=(BT709, BT709, BT709), x264_params=None):
        self.fps = fps
        self.pcm = np.ascontiguousarray(pcm, dtype=np.float32)
        self.container = av.open(path, "w", format="mp4", container_options=MUX_OPTIONS)
        try:
            vs = self.container.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            cc = vs.codec_context
            cc.time_base = 1 / fps
            cc.gop_size = gop
            cc.thread_count = 1
            cc.color_range = RANGE_MPEG
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

    def video(self, yuv):
        """Encode one picture: a yuv420p array (h*3/2, w) or a yuv420p av.VideoFrame."""
        frame = yuv if isinstance(yuv, av.VideoFrame) else av.VideoFrame.from_ndarray(
            yuv, format="yuv420p")
        frame.pts = self.vpts
        frame.time_base = self.vs.codec_context.time_base
        self.vpts += 1
        self.container.mux(self.vs.encode(frame))
        self._audio_until(samples_at(self.vpts, self.fps), final=False)

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
        with suppress(Exception):  # the error that made us abort matters, not this one
            self.container.close()
