"""check_image, check_audio, check_video and image_size: the API's input limits."""
from __future__ import annotations

import pytest
from media_helpers import md5
from PIL import Image

from wanflow import media
from wanflow.errors import MediaError


def test_check_image_reports_limits(tmp_path):
    good = tmp_path / "good.png"
    media.write_card_image(good, "Shot 1: reference still", 640, 480)
    assert media.check_image(good) == []
    again = tmp_path / "again.png"
    media.write_card_image(again, "Shot 1: reference still", 640, 480)
    assert md5(good) == md5(again) and Image.open(good).mode == "RGB"

    tiny = tmp_path / "tiny.png"
    media.write_card_image(tiny, "x", 100, 100)
    problems = media.check_image(tiny)
    assert problems and all("360" in p for p in problems)

    wide = tmp_path / "wide.jpg"
    Image.new("RGB", (2100, 400), (9, 9, 9)).save(wide, quality=80)
    assert any("2000" in p for p in media.check_image(wide))

    alpha = tmp_path / "alpha.png"
    Image.new("RGBA", (400, 400), (0, 0, 0, 0)).save(alpha)
    assert any("alpha" in p for p in media.check_image(alpha))

    gif = tmp_path / "anim.gif"
    Image.new("RGB", (400, 400)).save(gif)
    assert any("GIF" in p for p in media.check_image(gif))

    big = media.check_image(good, max_bytes=1000)
    assert any("limit" in p for p in big)

    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    problems = media.check_image(junk)
    assert len(problems) == 1 and "junk.jpg" in problems[0]

    assert media.image_size(good) == (640, 480)
    with pytest.raises(MediaError, match=r"junk\.jpg"):
        media.image_size(junk)


def test_check_audio_reports_limits(tmp_path, clips):
    short = tmp_path / "short.wav"
    media.write_tone(short, 2.0)
    problems = media.check_audio(short)
    assert len(problems) == 1 and "3 s" in problems[0]
    ok = tmp_path / "ok.mp3"
    media.write_tone(ok, 5.0, fmt="mp3")
    assert media.check_audio(ok) == []
    assert media.media_duration(ok) == pytest.approx(5.0, abs=0.05)
    long_ = tmp_path / "long.wav"
    media.write_tone(long_, 31.0, rate=8000)
    assert any("30 s" in p for p in media.check_audio(long_))
    assert any("limit" in p for p in media.check_audio(ok, max_bytes=1000))
    # By content, not extension: an MP4 named .mp3 is refused; WAV content named .mp3 is flagged.
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(clips[0].read_bytes())
    assert any("WAV or MP3" in p for p in media.check_audio(fake))
    renamed = tmp_path / "renamed.mp3"
    renamed.write_bytes(short.read_bytes())
    assert any("WAV" in p and ".mp3" in p for p in media.check_audio(renamed))
    assert len(media.check_audio(tmp_path / "none.wav")) == 1


def test_check_video_reports_limits(tmp_path, clips):
    assert media.check_video(clips[0]) == []
    problems = media.check_video(clips["4:3"])          # 1 s
    assert len(problems) == 1 and "2 s" in problems[0]
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 100)
    assert len(media.check_video(junk)) == 1
