"""extract_frame and thumbnail: the right frame, as an RGB PNG."""
from __future__ import annotations

import av
import numpy as np
import pytest
from conftest import ROOT
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


def test_frame_strip_and_image_thumbnail(tmp_path, clips):
    strip = {at: tmp_path / f"{at}.png" for at in ("first", "middle", "last")}
    media.frame_strip(clips[0], strip, width=160)
    pictures = [np.asarray(Image.open(strip[at])).astype(int) for at in strip]
    assert all(p.shape == (90, 160, 3) for p in pictures)
    assert np.abs(pictures[0] - pictures[1]).max() > 50   # the card moves over the clip
    media.image_thumbnail(ROOT / "examples" / "media" / "harbor-dawn.png", tmp_path / "t.png",
                          width=100)
    assert Image.open(tmp_path / "t.png").size == (100, 56)
