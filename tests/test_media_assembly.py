"""assemble: stream copy, re-encode with crossfades, normalising sizes, the audio bed."""
from __future__ import annotations

import os

import av
import numpy as np
import pytest
from media_helpers import (
    FPS,
    decode_audio,
    decode_video,
    md5,
    rms,
    tone_level,
    video_packets,
    write_video_only,
)
from PIL import Image

from wanflow import media
from wanflow.errors import MediaError
from wanflow.media import assembly


def test_crossfades_shorten_by_their_length(tmp_path, clips):
    dest = tmp_path / "xf.mp4"
    three = [clips[0], clips[1], clips[2]]
    total = sum(media.probe(c).duration for c in three)
    result = media.assemble(three, dest, transitions=[("crossfade", 0.5), ("crossfade", 0.5)],
                            width=320, height=180, fps=FPS)
    assert result.reencoded is True
    assert result.duration == pytest.approx(total - 1.0, abs=1 / FPS)
    p = media.probe(dest)
    assert (p.video_codec, p.audio_codec, p.width, p.height) == ("h264", "aac", 320, 180)
    assert p.duration == pytest.approx(total - 1.0, abs=1 / FPS)
    n, _, _ = decode_video(dest)
    assert n == round((total - 1.0) * FPS)
    pcm, rate = decode_audio(dest)
    assert pcm.shape[1] >= (total - 1.0 - 0.05) * rate
    # The tone runs through the crossfades without a dip (equal-gain linear fades).
    assert tone_level(pcm, rate, 1000, 1.0, 2.0) == pytest.approx(0.5, abs=0.1)
    # Mid-crossfade frame is a blend: differs from both the outgoing and incoming pictures.
    mid, before, after = (tmp_path / f"{k}.png" for k in ("mid", "before", "after"))
    media.extract_frame(dest, mid, 1.75)
    media.extract_frame(clips[0], before, 1.75)
    media.extract_frame(clips[1], after, 0.25)
    m, b, a = (np.asarray(Image.open(x)).astype(int) for x in (mid, before, after))
    assert np.abs(m - b).max() > 30 and np.abs(m - a).max() > 30
    # Deterministic: assembling again gives the same bytes.
    again = tmp_path / "xf2.mp4"
    media.assemble(three, again, transitions=("crossfade", 0.5), width=320, height=180, fps=FPS)
    assert md5(dest) == md5(again)


def test_same_codec_cuts_are_stream_copied(tmp_path, clips):
    three = [clips[0], clips[1], clips[2]]
    dest = tmp_path / "copy.mp4"
    result = media.assemble(three, dest, width=320, height=180, fps=FPS)
    assert result.reencoded is False
    total = sum(media.probe(c).duration for c in three)
    assert result.duration == pytest.approx(total, abs=0.01)
    expected = [pkt for c in three for pkt in video_packets(c)]
    assert video_packets(dest) == expected, "video packets must be copied byte for byte"
    n, _, pts = decode_video(dest)
    assert n == round(total * FPS) and pts == sorted(pts) and len(set(pts)) == n
    again = tmp_path / "copy2.mp4"
    assert media.assemble(three, again, transitions=("cut", 0), width=320, height=180,
                          fps=FPS).reencoded is False
    assert md5(again) == md5(dest)
    pcm, rate = decode_audio(dest)
    assert pcm.shape[1] >= (total - 0.05) * rate
    assert media.probe(dest).has_audio


def test_different_sizes_are_normalised(tmp_path, clips):
    dest = tmp_path / "norm.mp4"
    result = media.assemble([clips[0], clips["4:3"], clips["portrait"]], dest,
                            width=320, height=180, fps=30)
    assert result.reencoded is True
    p = media.probe(dest)
    assert (p.width, p.height, p.fps) == (320, 180, 30.0)
    assert p.duration == pytest.approx(4.0, abs=1 / 30)
    n, _, _ = decode_video(dest)
    assert n == 120
    # The 4:3 clip is pillarboxed: black side bars, picture in the middle.
    png = tmp_path / "f.png"
    media.extract_frame(dest, png, 2.5)
    rgb = np.asarray(Image.open(png)).astype(int)
    assert rgb.shape == (180, 320, 3)
    assert rgb[:, :30].max() < 24 and rgb[:, 150:170].max() > 100


def test_bed_under_the_result_with_ducking(tmp_path, clips):
    bed_path = tmp_path / "bed.wav"
    media.write_tone(bed_path, 10.0, freq=300.0)   # longer than the picture: trimmed
    two = [clips[0], clips[2]]
    plain, ducked = tmp_path / "plain.mp4", tmp_path / "ducked.mp4"
    r1 = media.assemble(two, plain, width=320, height=180, fps=FPS,
                        bed=media.AudioBed(str(bed_path), volume=0.5))
    r2 = media.assemble(two, ducked, width=320, height=180, fps=FPS,
                        bed=media.AudioBed(str(bed_path), volume=0.5, duck=0.3))
    for r, path in ((r1, plain), (r2, ducked)):
        assert r.reencoded is True
        assert r.duration == pytest.approx(4.0, abs=1 / FPS)
        with av.open(str(path)) as c:
            for st in c.streams:
                assert float(st.duration * st.time_base) == pytest.approx(4.0, abs=0.01)
    p_pcm, rate = decode_audio(plain)
    d_pcm, _ = decode_audio(ducked)
    # The bed (300 Hz) is there at its volume in both; the clips' tone (1 kHz) is ducked.
    for pcm in (p_pcm, d_pcm):
        assert tone_level(pcm, rate, 300, 1.0, 2.0) == pytest.approx(0.25, abs=0.04)
    ratio = tone_level(d_pcm, rate, 1000, 1.0, 2.0) / tone_level(p_pcm, rate, 1000, 1.0, 2.0)
    assert ratio == pytest.approx(0.3, abs=0.05)
    assert rms(d_pcm, rate, 0.5, 3.5) < rms(p_pcm, rate, 0.5, 3.5)
    # A bed shorter than the picture is padded with silence.
    short = tmp_path / "short.wav"
    media.write_tone(short, 1.0, freq=300.0)
    dest = tmp_path / "short_bed.mp4"
    r = media.assemble([clips["4:3"], clips["portrait"]], dest, width=320, height=180,
                       fps=FPS, bed=media.AudioBed(str(short)))
    assert r.duration == pytest.approx(2.0, abs=1 / FPS)
    pcm, rate = decode_audio(dest)
    assert rms(pcm, rate, 0.1, 0.9) > 0.2 and rms(pcm, rate, 1.2, 1.9) < 0.01


def test_clip_without_audio_contributes_silence(tmp_path, clips):
    silent = tmp_path / "noaudio.mp4"
    write_video_only(silent, 240, 240, 1.0)
    assert media.probe(silent).has_audio is False
    dest = tmp_path / "mixed.mp4"
    r = media.assemble([clips[0], silent], dest, width=320, height=180, fps=FPS)
    assert r.reencoded is True and r.duration == pytest.approx(3.0, abs=1 / FPS)
    assert media.probe(dest).audio_codec == "aac"
    pcm, rate = decode_audio(dest)
    assert rms(pcm, rate, 0.2, 1.8) > 0.2 and rms(pcm, rate, 2.1, 2.9) < 0.01


def test_failed_assemble_leaves_nothing(tmp_path, clips, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dest = out_dir / "final.mp4"
    bad = tmp_path / "bad.mp4"
    data = clips[0].read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=r"missing\.mp4"):
        media.assemble([clips[0], tmp_path / "missing.mp4"], dest, width=320, height=180, fps=FPS)
    with pytest.raises(MediaError, match=r"bad\.mp4"):
        media.assemble([clips[0], bad], dest, width=320, height=180, fps=FPS)
    # A failure half-way through writing (after frames were encoded) cleans up too.
    calls = {"n": 0}
    real = assembly._fit_picture

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 20:
            raise MediaError("simulated failure while encoding")
        return real(*args, **kwargs)

    monkeypatch.setattr(assembly, "_fit_picture", failing)
    with pytest.raises(MediaError, match="simulated"):
        media.assemble([clips[0], clips["4:3"]], dest, width=320, height=180, fps=FPS)
    assert calls["n"] > 20
    assert os.listdir(out_dir) == [], "no file at dest and no temp files"
    with pytest.raises(MediaError, match="transition"):
        media.assemble([clips[0], clips[1]], dest, transitions=[("wipe", 1.0)],
                       width=320, height=180, fps=FPS)
    assert os.listdir(out_dir) == []


def test_short_bed_loops_or_fades_when_asked(tmp_path, clips):
    short = tmp_path / "short.wav"
    media.write_tone(short, 1.0, freq=300.0)
    two = [clips["4:3"], clips["portrait"]]     # 2 s of picture under a 1 s bed
    looped, faded = tmp_path / "looped.mp4", tmp_path / "faded.mp4"
    media.assemble(two, looped, width=320, height=180, fps=FPS,
                   bed=media.AudioBed(str(short), loop=True))
    media.assemble(two, faded, width=320, height=180, fps=FPS,
                   bed=media.AudioBed(str(short), fade=0.5))
    pcm, rate = decode_audio(looped)
    assert rms(pcm, rate, 1.2, 1.9) > 0.2, "a looped bed plays to the end"
    pcm, rate = decode_audio(faded)
    assert rms(pcm, rate, 0.1, 0.4) > 0.2            # full level before the fade
    assert rms(pcm, rate, 0.55, 0.75) < rms(pcm, rate, 0.1, 0.4) * 0.8   # fading
    assert rms(pcm, rate, 1.2, 1.9) < 0.01           # over when the bed ends
