"""probe and media_duration: good clips are described, broken files are refused."""
from __future__ import annotations

import numpy as np
import pytest

from wanflow import media
from wanflow.errors import MediaError


def test_probe_rejects_broken_files(tmp_path, clips):
    data = clips[0].read_bytes()
    cases = {
        "zero.mp4": (b"", "empty"),
        "half.mp4": (data[: len(data) // 2], "truncated"),
        "text.mp4": (b"this is not a video, just some text\n" * 40, "not a readable"),
        "random.mp4": (np.random.default_rng(7).bytes(20000), "not a readable"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(MediaError) as err:
            media.probe(path)
        message = str(err.value)
        assert name in message and words in message, message
        assert "Traceback" not in message
    # Cutting off even a little of the end is caught, not just half.
    for keep in (0.99, 0.9, 0.75):
        path = tmp_path / f"cut{int(keep * 100)}.mp4"
        path.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(MediaError, match="truncated"):
            media.probe(path)
    with pytest.raises(MediaError, match="does not exist"):
        media.probe(tmp_path / "nothing.mp4")
    media.write_tone(tmp_path / "t.wav", 1.0)
    with pytest.raises(MediaError, match="no video stream"):
        media.probe(tmp_path / "t.wav")
    media.write_card_image(tmp_path / "still.png", "x", 64, 64)
    with pytest.raises(MediaError, match="still image"):
        media.probe(tmp_path / "still.png")


def test_probe_accepts_good_clips(clips):
    p = media.probe(clips[1])
    assert (p.width, p.height, p.fps) == (320, 180, 24.0)
    assert (p.video_codec, p.audio_codec) == ("h264", "aac")
    assert p.duration == pytest.approx(1.5, abs=0.01)
    assert media.media_duration(clips[1]) == pytest.approx(1.5, abs=0.01)
