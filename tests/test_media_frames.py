"""extract_frame and thumbnail: the right frame, as an RGB PNG."""
from __future__ import annotations

import av
import numpy as np
import pytest
from media_helpers import decode_video
from PIL import Image

from wanflow import media
from wanflow.errors import MediaError


def test_last_frame_png_matches_decoded_last_frame(tmp_path, clips):
    png = tmp_path / "last.png"
    media.extract_frame(clips[1], png)
    _, last, _ = decode_video(clips[1])
    img = Image.open(png)
    assert img.mode == "RGB" and img.format == "PNG"
    got = np.asarray(img).astype(int)
    assert got.shape == last.shape
    assert np.abs(got - last.astype(int)).max() <= 1
    # A time in seconds picks the frame shown at that time.
    at = tmp_path / "at.png"
    media.extract_frame(clips[1], at, 1.0)
    with av.open(str(clips[1])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert np.array_equal(np.asarray(Image.open(at)), frames[24])
    # Past the end gives the last frame; nonsense is an error.
    media.extract_frame(clips[1], at, 99.0)
    assert np.array_equal(np.asarray(Image.open(at)), last)
    with pytest.raises(MediaError):
        media.extract_frame(clips[1], at, "middle")


def test_thumbnail(tmp_path, clips):
    png = tmp_path / "thumb.png"
    media.thumbnail(clips["4:3"], png, width=160)
    img = Image.open(png)
    assert img.size == (160, 120) and img.mode == "RGB"
