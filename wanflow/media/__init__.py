"""All audio and video work of wanflow, through PyAV (no ffmpeg binary needed).

This package is the only part of the project that imports ``av``, ``PIL`` and ``numpy``.
Every failure a user can cause (missing, empty, truncated or undecodable file, a file
outside the API's limits) is raised as :class:`wanflow.errors.MediaError` whose message
names the file and what is wrong. Every file written goes to a temporary file in the
destination's directory first and is moved into place with ``os.replace``: on failure
nothing is left at the destination and no temporary file stays behind.

Outputs are deterministic: the same inputs give byte-identical files (single-threaded
libx264, ffmpeg's native AAC encoder, ``fflags=+bitexact`` so that no varying tag or
creation time is written).

Modules: ``probing`` (strict probe), ``checks`` (API limits on inputs), ``cards`` and
``preview`` (animatics), ``frames`` (stills), ``assembly`` (joining clips), ``encode``
(the MP4 writer), ``audio`` and ``yuv`` (sample and picture buffers), ``files`` (safe
reads and atomic writes) and ``testmedia`` (generated tones and cards).
"""
from __future__ import annotations

from .assembly import Assembly, AudioBed, assemble
from .cards import PreviewCard
from .checks import check_audio, check_image, check_video, image_size
from .frames import extract_frame, frame_strip, image_thumbnail, thumbnail
from .preview import render_preview
from .probing import Probe, media_duration, probe
from .testmedia import write_card_image, write_tone

__all__ = [
    "Assembly", "AudioBed", "PreviewCard", "Probe", "assemble", "check_audio", "check_image",
    "check_video", "extract_frame", "frame_strip", "image_size", "image_thumbnail",
    "media_duration", "probe", "render_preview", "thumbnail", "write_card_image", "write_tone",
]
