"""render_preview: the animatic's size, length, frame rate, audio and determinism."""
from __future__ import annotations

import os

import av
import numpy as np
import pytest
from media_helpers import card, decode_audio, decode_video, md5, rms, tone_level
from PIL import Image

from wanflow import media
from wanflow.errors import MediaError


def test_preview_720p_probes_and_is_deterministic(tmp_path):
    prompt = "A lighthouse on a cliff at dusk, waves crashing below, slow aerial orbit, " * 4
    c = card(duration=5.0, width=1280, height=720, fps=30, model="wan2.2-t2v-plus", prompt=prompt)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    media.render_preview(c, a)
    media.render_preview(c, b)
    p = media.probe(a)
    assert (p.width, p.height) == (1280, 720)
    assert p.duration == pytest.approx(5.0, abs=0.05)
    assert p.video_codec == "h264" and p.audio_codec == "aac" and p.has_audio
    assert p.pix_fmt == "yuv420p" and p.fps == pytest.approx(30.0)
    assert p.size_bytes == os.path.getsize(a)
    assert md5(a) == md5(b), "same card must give a byte-identical file"
    # Plays: every frame decodes, at the exact rate, and the picture moves.
    n, last, pts = decode_video(a)
    assert n == 150
    with av.open(str(a)) as cont:
        vs = cont.streams.video[0]
        assert vs.average_rate == 30
        times = [float(t * vs.time_base) for t in pts]
        assert times[1] - times[0] == pytest.approx(1 / 30)
        assert float(vs.duration * vs.time_base) == pytest.approx(5.0, abs=1e-6)
    pcm, rate = decode_audio(a)
    assert rate == 48000 and pcm.shape[0] == 2
    assert pcm.shape[1] >= 5 * 48000 and rms(pcm, rate, 0, 5) < 1e-3   # silence
    f0 = tmp_path / "f0.png"
    media.extract_frame(a, f0, "first")
    first = np.asarray(Image.open(f0))
    assert first.shape == (720, 1280, 3)
    assert np.abs(first.astype(int) - last.astype(int)).max() > 100, "no visible motion"


def test_preview_audio_is_padded_or_trimmed(tmp_path):
    short, long_ = tmp_path / "short.mp3", tmp_path / "long.wav"
    media.write_tone(short, 1.0, freq=1000.0, fmt="mp3")
    media.write_tone(long_, 4.0, freq=1000.0, channels=2)
    for src in (short, long_):
        out = tmp_path / f"p_{src.stem}.mp4"
        media.render_preview(card(duration=2.0), out, audio=src)
        p = media.probe(out)
        assert p.duration == pytest.approx(2.0, abs=0.05)
        with av.open(str(out)) as c:
            a = c.streams.audio[0]
            assert float(a.duration * a.time_base) == pytest.approx(2.0, abs=0.01)
            assert a.codec_context.sample_rate == 48000 and a.codec_context.channels == 2
        pcm, rate = decode_audio(out)
        assert tone_level(pcm, rate, 1000, 0.0, 0.8) == pytest.approx(0.5, abs=0.08)
        late = rms(pcm, rate, 1.2, 1.95)
        if src is short:
            assert late < 0.01, "audio shorter than the shot must be padded with silence"
        else:
            assert late > 0.2, "audio longer than the shot must run to the end (trimmed)"


def test_preview_tiny_and_portrait_sizes(tmp_path):
    for w, h in ((40, 24), (64, 64), (180, 320)):
        out = tmp_path / f"p{w}x{h}.mp4"
        media.render_preview(card(duration=0.5, width=w, height=h, fps=8.0), out)
        p = media.probe(out)
        assert (p.width, p.height, p.fps) == (w, h, 8.0)
        assert decode_video(out)[0] == 4


def test_preview_rejects_bad_inputs(tmp_path):
    with pytest.raises(MediaError, match=r"odd|even"):
        media.render_preview(card(width=321), tmp_path / "x.mp4")
    with pytest.raises(MediaError, match=r"missing\.wav.*does not exist"):
        media.render_preview(card(), tmp_path / "x.mp4", audio=tmp_path / "missing.wav")
    assert os.listdir(tmp_path) == []


def _frame(path, at, tmp_path):
    png = tmp_path / f"at{at}.png"
    media.extract_frame(path, png, at)
    return np.asarray(Image.open(png)).astype(int)


def test_card_holds_the_input_images_at_its_ends_and_shows_beats_in_turn(tmp_path):
    still = tmp_path / "still.png"
    Image.new("RGB", (320, 180), (200, 40, 40)).save(still)    # a red still
    c = card(duration=2.0, first_image=str(still), last_image=str(still),
             references=(str(still),), prompt="a harbor",
             beats=((0.0, 1.0, "the boat comes in"), (1.0, 2.0, "it moors")),
             scene_start=4.5, film_start=12.25)
    out = tmp_path / "beats.mp4"
    media.render_preview(c, out)
    assert media.probe(out).duration == pytest.approx(2.0, abs=0.05)
    first, last = _frame(out, "first", tmp_path), _frame(out, "last", tmp_path)
    middle_a, middle_b = _frame(out, 0.7, tmp_path), _frame(out, 1.4, tmp_path)
    # The model starts on the first frame and lands on the last: so does the animatic.
    for end in (first, last):
        centre = end[80:100, 150:170].mean(axis=(0, 1))
        assert centre[0] > 150 and centre[1] < 90, centre
    # Between them the card, whose text changes with the beat.
    assert np.abs(middle_a[:100] - middle_b[:100]).max() > 100
    assert np.abs(middle_a[80:100, 150:170].mean(axis=(0, 1)) - first[80:100, 150:170].mean(
        axis=(0, 1))).max() > 50


def test_chroma_is_the_float_mean_of_each_2x2_block():
    """The 4:2:0 chroma of a picture: each 2x2 block's mean, exactly what a float32 mean
    over the block gives (the sum of four bytes is exact, and so is its quarter)."""
    from wanflow.media.yuv import rgb_to_yuv

    rgb = np.random.default_rng(7).integers(0, 256, (72, 128, 3), dtype=np.uint8)
    _, U, V = rgb_to_yuv(rgb)
    sub = rgb.astype(np.float32).reshape(36, 2, 64, 2, 3).mean(axis=(1, 3))
    ys = 0.2126 * sub[..., 0] + 0.7152 * sub[..., 1] + 0.0722 * sub[..., 2]
    for plane, diff, scale in ((U, sub[..., 2] - ys, 1.8556), (V, sub[..., 0] - ys, 1.5748)):
        expected = np.clip(np.rint(128.0 + diff / scale * (224.0 / 255.0)), 0, 255)
        assert np.array_equal(plane, expected.astype(np.uint8))
