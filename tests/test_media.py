"""Tests of wanflow.media. All media is generated at run time; outputs are re-decoded in full.

The tests use PyAV/numpy/Pillow directly only to check wanflow.media's outputs independently.
"""
from __future__ import annotations

import hashlib
import os
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from wanflow import media
from wanflow.media import assembly
from wanflow.errors import MediaError

FPS = 24
SMALL = (320, 180)


# --------------------------------------------------------------------------- helpers


def card(take=1, duration=2.0, width=SMALL[0], height=SMALL[1], fps=FPS, **kw):
    return media.PreviewCard(scene="S1", shot="A", take=take, prompt=kw.pop("prompt", "a cat"),
                             duration=duration, width=width, height=height, fps=fps, **kw)


def decode_video(path):
    """Decode every video frame; return (count, last frame as RGB array, all pts)."""
    with av.open(str(path)) as c:
        last, pts = None, []
        for frame in c.decode(video=0):
            last = frame
            pts.append(frame.pts)
        return len(pts), last.to_ndarray(format="rgb24"), pts


def decode_audio(path):
    """Decode the first audio stream as float32 (channels, samples); also its rate."""
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        chunks = [f.to_ndarray() for f in c.decode(st)]
        return np.concatenate(chunks, axis=1), st.codec_context.sample_rate


def tone_level(pcm, rate, freq, start, end):
    """Amplitude of a sine at `freq` in pcm[start:end] seconds (1 s windows, exact bins)."""
    seg = pcm[0, int(start * rate):int(end * rate)]
    spectrum = np.abs(np.fft.rfft(seg)) * 2 / len(seg)
    return float(spectrum[int(round(freq * len(seg) / rate))])


def rms(pcm, rate, start, end):
    seg = pcm[:, int(start * rate):int(end * rate)]
    return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2)))


def video_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


def write_video_only(path, width, height, seconds, fps=FPS, color=(200, 40, 40)):
    """A clip with no audio stream at all (made directly with PyAV)."""
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.codec_context.options = {"preset": "ultrafast"}
        rgb = np.zeros((height, width, 3), np.uint8)
        rgb[:] = color
        for i in range(int(round(seconds * fps))):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(st.encode(frame))
        out.mux(st.encode(None))


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three same-parameter small previews with a 1 kHz tone, plus a 4:3 and a portrait one."""
    d = tmp_path_factory.mktemp("clips")
    media.write_tone(d / "tone.wav", 10.0, freq=1000.0)
    out = {}
    for i, dur in enumerate((2.0, 1.5, 2.0)):
        out[i] = d / f"clip{i}.mp4"
        media.render_preview(card(take=i + 1, duration=dur), out[i], audio=d / "tone.wav")
    out["4:3"] = d / "four_three.mp4"
    media.render_preview(card(take=9, duration=1.0, width=320, height=240), out["4:3"])
    out["portrait"] = d / "portrait.mp4"
    media.render_preview(card(take=8, duration=1.0, width=180, height=320), out["portrait"])
    out["dir"] = d
    return out


# --------------------------------------------------------------------------- preview


def test_preview_720p_probes_and_is_deterministic(tmp_path):
    c = card(duration=5.0, width=1280, height=720, fps=30, model="wan2.2-t2v-plus",
             prompt="A lighthouse on a cliff at dusk, waves crashing below, slow aerial orbit, " * 4)
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
    with pytest.raises(MediaError, match="odd|even"):
        media.render_preview(card(width=321), tmp_path / "x.mp4")
    with pytest.raises(MediaError, match="missing.wav.*does not exist"):
        media.render_preview(card(), tmp_path / "x.mp4", audio=tmp_path / "missing.wav")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- probe


def test_probe_rejects_broken_files(tmp_path, clips):
    data = open(clips[0], "rb").read()
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
    assert (p.width, p.height, p.fps, p.video_codec, p.audio_codec) == (320, 180, 24.0, "h264", "aac")
    assert p.duration == pytest.approx(1.5, abs=0.01)
    assert media.media_duration(clips[1]) == pytest.approx(1.5, abs=0.01)


# --------------------------------------------------------------------------- assembly


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
    data = open(clips[0], "rb").read()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="missing.mp4"):
        media.assemble([clips[0], tmp_path / "missing.mp4"], dest, width=320, height=180, fps=FPS)
    with pytest.raises(MediaError, match="bad.mp4"):
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


# --------------------------------------------------------------------------- frames


def test_last_frame_png_matches_decoded_last_frame(tmp_path, clips):
    png = tmp_path / "last.png"
    media.extract_frame(clips[1], png)
    n, last, _ = decode_video(clips[1])
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


# --------------------------------------------------------------------------- checks


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
    with pytest.raises(MediaError, match="junk.jpg"):
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
    fake.write_bytes(open(clips[0], "rb").read())
    assert any("WAV or MP3" in p for p in media.check_audio(fake))
    renamed = tmp_path / "renamed.mp3"
    renamed.write_bytes(open(short, "rb").read())
    assert any("WAV" in p and ".mp3" in p for p in media.check_audio(renamed))
    assert len(media.check_audio(tmp_path / "none.wav")) == 1


def test_check_video_reports_limits(tmp_path, clips):
    assert media.check_video(clips[0]) == []
    problems = media.check_video(clips["4:3"])          # 1 s
    assert len(problems) == 1 and "2 s" in problems[0]
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 100)
    assert len(media.check_video(junk)) == 1


def test_write_tone_is_deterministic(tmp_path):
    for fmt in ("wav", "mp3"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        media.write_tone(a, 1.0, fmt=fmt)
        media.write_tone(b, 1.0, fmt=fmt)
        assert md5(a) == md5(b)
        assert media.media_duration(a) == pytest.approx(1.0, abs=0.03)
    with pytest.raises(MediaError):
        media.write_tone(tmp_path / "x.ogg", 1.0, fmt="ogg")
