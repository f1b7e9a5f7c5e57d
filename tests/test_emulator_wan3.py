"""The emulator speaks Wan 3.0 and wan2.7-videoedit: their media rules, the lengths it
measures from uploads, the duration words on the wire, the usage it reports, and the
official SDK against them."""
from __future__ import annotations

import emulator_helpers
import pytest
from emulator_helpers import (
    AUTH,
    KEY,
    PNG,
    H,
    assert_error,
    make_body,
    submit,
    task_id,
    wait,
)

from wanflow import media

make_emu = emulator_helpers.make_emu
client = emulator_helpers.client

W3, EDIT = "wan3.0-video", "wan2.7-videoedit"
CLIP = "https://e.com/clip.mp4"


def item(kind, url=PNG):
    return {"type": kind, "url": url}


def edit(*extra, **params):
    return make_body(EDIT, {"prompt": "ink", "media": [item("video", CLIP), *extra]}, **params)


INVALID = [
    ("frame with a reference", make_body(W3, {"prompt": "x", "media": [
        item("first_frame"), item("reference_image")]}), ["first_frame", "reference_image"]),
    ("frame with a link", make_body(W3, {"prompt": "x", "media": [
        item("first_frame"), item("link", "https://e.com/story")]}), ["cannot be combined"]),
    ("file and link", make_body(W3, {"prompt": "x", "media": [
        item("file", "https://e.com/brief.pdf"), item("link", "https://e.com/story")]}),
     ["file and link"]),
    ("last frame alone", make_body(W3, {"media": [item("last_frame")]}), ["needs a first_frame"]),
    ("eleven images", make_body(W3, {"prompt": "x", "media": [item("reference_image")] * 11}),
     ["11 reference_image", "at most 10"]),
    ("six audios", make_body(W3, {"prompt": "x", "media": [
        item("reference_audio", "https://e.com/v.wav")] * 6}), ["at most 5"]),
    ("first clip", make_body(W3, {"prompt": "x", "media": [item("first_clip", CLIP)]}),
     ["'first_clip' is not supported"]),
    ("negative prompt", make_body(W3, {"prompt": "x", "negative_prompt": "blur"}),
     ["input.negative_prompt"]),
    ("size", make_body(W3, {"prompt": "x"}, size="1280*720"), ["parameters.size"]),
    ("shot_type", make_body(W3, {"prompt": "x"}, shot_type="multi"), ["parameters.shot_type"]),
    ("audio_url", make_body(W3, {"prompt": "x", "audio_url": "https://e.com/a.mp3"}),
     ["input.audio_url"]),
    ("duration 31", make_body(W3, {"prompt": "x"}, duration=31), ["parameters.duration", "-1"]),
    ("duration 0", make_body(W3, {"prompt": "x"}, duration=0), ["parameters.duration"]),
    ("ratio 21:9", make_body(W3, {"prompt": "x"}, ratio="21:9"), ["parameters.ratio", "adaptive"]),
    ("no prompt, no media", make_body(W3, {"prompt": ""}), ["input.prompt"]),
    ("edit without a video", make_body(EDIT, {"prompt": "x", "media": [
        item("reference_image")]}), ["one video"]),
    ("edit with five images", edit(*[item("reference_image")] * 5), ["at most 4"]),
    ("edit with a reference video", edit(item("reference_video", CLIP)),
     ["'reference_video' is not supported"]),
    ("edit duration 12", edit(duration=12), ["parameters.duration", "0 (the video's length)"]),
    ("edit duration -1", edit(duration=-1), ["parameters.duration"]),
    ("edit audio_setting keep", edit(audio_setting="keep"), ["audio_setting", "origin"]),
    ("edit adaptive", edit(ratio="adaptive"), ["parameters.ratio"]),
    ("edit 480P", edit(resolution="480P"), ["parameters.resolution"]),
]


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_submits(make_emu, client, case):
    _, body, fragments = case
    emu = make_emu()
    assert_error(submit(client, emu, body), 400, "InvalidParameter", *fragments)
    assert emu.submissions() == []


VALID = [
    ("text only", make_body(W3, {"prompt": "x"})),
    ("smart duration", make_body(W3, {"prompt": "x"}, duration=-1, ratio="4:3")),
    ("frames", make_body(W3, {"media": [item("first_frame"), item("last_frame")]},
                         ratio="adaptive", resolution="720P", audio=False)),
    ("every reference kind and a document", make_body(W3, {
        "prompt": "Image 1 hums Audio 1",
        "media": [item("reference_image"), item("reference_video", CLIP),
                  item("reference_audio", "https://e.com/v.wav"),
                  item("file", "https://e.com/brief.pdf")]},
        duration=30, enable_thinking=True, prompt_extend=False, seed=7)),
    ("a link", make_body("wan3.0-video-prime", {"prompt": "x", "media": [
        item("link", "https://e.com/story")]})),
    ("edit defaults", edit()),
    ("edit with images and settings", edit(item("reference_image"), duration=4, ratio="1:1",
                                           audio_setting="origin", resolution="720P")),
]


@pytest.mark.parametrize("case", VALID, ids=[c[0] for c in VALID])
def test_valid_submits(make_emu, client, case):
    _, body = case
    emu = make_emu()
    task_id(submit(client, emu, body))
    assert emu.submissions()[0]["body"] == body


def _upload(client, emu, model, name, data, mime):
    d = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": model},
                   headers=AUTH).json()["data"]
    key = f"{d['upload_dir']}/{name}"
    form = {"OSSAccessKeyId": d["oss_access_key_id"], "Signature": d["signature"],
            "policy": d["policy"], "key": key, "x-oss-object-acl": "private",
            "x-oss-forbid-overwrite": "true", "success_action_status": "200",
            "x-oss-content-type": mime}
    r = client.post(d["upload_host"], data=form, files={"file": (name, data, mime)})
    assert r.status_code == 200, r.text
    return "oss://" + key


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("wan3-media")
    media.write_tone(d / "voice.wav", 4.0, rate=8000)
    media.render_preview(media.PreviewCard("s", "a", 1, "a clip", 6.0, 128, 72, 10),
                         d / "clip6.mp4")
    media.render_preview(media.PreviewCard("s", "b", 1, "a long clip", 12.0, 72, 128, 10),
                         d / "clip12.mp4")
    return {name: (d / name).read_bytes() for name in ("voice.wav", "clip6.mp4", "clip12.mp4")}


def test_lengths_are_measured_from_uploads(make_emu, client, files):
    """Over-long totals are refused: reference audios over 15 s, reference videos and the
    clip over 30 s, a video to edit outside 2-10 s."""
    emu = make_emu()
    voice = _upload(client, emu, W3, "voice.wav", files["voice.wav"], "audio/wav")
    clip = _upload(client, emu, W3, "clip12.mp4", files["clip12.mp4"], "video/mp4")
    resolve = {**H, "X-DashScope-OssResourceResolve": "enable"}

    def send(body):
        return submit(client, emu, body, headers=resolve)

    four = make_body(W3, {"prompt": "x", "media": [item("reference_audio", voice)] * 4})
    assert_error(send(four), 400, "InvalidParameter", "reference_audio", "16 s", "15 s")
    three = make_body(W3, {"prompt": "x", "media": [item("reference_audio", voice)] * 3})
    task_id(send(three))
    long = make_body(W3, {"prompt": "x", "media": [item("reference_video", clip)]}, duration=20)
    assert_error(send(long), 400, "InvalidParameter", "reference videos last 12 s", "30 s")
    fits = make_body(W3, {"prompt": "x", "media": [item("reference_video", clip)]}, duration=18)
    tid = task_id(send(fits))
    usage = wait(client, emu, tid)["usage"]
    assert usage["input_video_duration"] == pytest.approx(12.0, abs=0.1)
    assert usage["output_video_duration"] == 18
    assert usage["duration"] == pytest.approx(30.0, abs=0.1) and usage["fps"] == 30

    edit_long = make_body(EDIT, {"prompt": "ink", "media": [item("video", _upload(
        client, emu, EDIT, "clip12.mp4", files["clip12.mp4"], "video/mp4"))]})
    assert_error(send(edit_long), 400, "InvalidParameter", "lasts 12 s", "2-10 s")


def test_duration_words_on_the_wire(make_emu, client, files, tmp_path):
    """-1 lets the model choose (the emulator picks 8 s); videoedit's 0 keeps the edited
    video's length and, without a ratio, its aspect."""
    emu = make_emu()
    smart = task_id(submit(client, emu, make_body(W3, {"prompt": "x"}, duration=-1)))
    out = wait(client, emu, smart)
    assert out["usage"]["output_video_duration"] == 8
    (tmp_path / "smart.mp4").write_bytes(client.get(out["output"]["video_url"]).content)
    assert media.probe(tmp_path / "smart.mp4").duration == pytest.approx(8.0, abs=0.1)

    clip = _upload(client, emu, EDIT, "clip6.mp4", files["clip6.mp4"], "video/mp4")
    body = make_body(EDIT, {"prompt": "ink", "media": [item("video", clip)]}, resolution="720P")
    tid = task_id(submit(client, emu, body,
                         headers={**H, "X-DashScope-OssResourceResolve": "enable"}))
    out = wait(client, emu, tid)
    assert out["usage"]["output_video_duration"] == pytest.approx(6.0, abs=0.1)
    assert out["usage"]["input_video_duration"] == pytest.approx(6.0, abs=0.1)
    assert out["usage"]["ratio"] == "16:9"
    (tmp_path / "edit.mp4").write_bytes(client.get(out["output"]["video_url"]).content)
    probe = media.probe(tmp_path / "edit.mp4")
    assert (probe.width, probe.height) == (320, 180)   # 1280*720 at the test render scale


def test_official_sdk_submits_wan3(make_emu, monkeypatch):
    dashscope = pytest.importorskip("dashscope")
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    emu = make_emu(latency=(0.3, 0.3))
    monkeypatch.setattr(dashscope, "base_http_api_url", emu.base_url)
    from dashscope import VideoSynthesis

    task = VideoSynthesis.async_call(model=W3, prompt="a lighthouse in a storm", api_key=KEY,
                                     resolution="480P", ratio="16:9", duration=-1)
    assert task.status_code == 200, task
    result = VideoSynthesis.wait(task, api_key=KEY)
    assert result.output.task_status == "SUCCEEDED", result
    assert result.usage["output_video_duration"] == 8
    bad = VideoSynthesis.async_call(model=W3, prompt="x", api_key=KEY, negative_prompt="blur")
    assert bad.status_code == 400 and bad.code == "InvalidParameter"
    assert "negative_prompt" in bad.message
    assert [s["body"]["model"] for s in emu.submissions()] == [W3]
