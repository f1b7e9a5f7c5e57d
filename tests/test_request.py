"""Wire bodies per model family (reference §2), inputs as content-hash placeholders."""
from wanflow.plan import request
from wanflow.plan.request import Blob
from wanflow.spec.nodes import Input, Shot, ShotRef, Where

W = Where("t.yaml")
IMG = Blob("a" * 64, "image/png")
IMG2 = Blob("b" * 64, "image/png")
AUD = Blob("c" * 64, "audio/wav")


def test_wan27_t2v_uses_resolution_and_ratio():
    shot = Shot("s", "x", "wan2.7-t2v", W, prompt="p", duration=8, resolution="720P",
                ratio="9:16", watermark=True)
    body = request.build(shot, 1, {}, {}).body
    assert body["parameters"] == {"resolution": "720P", "ratio": "9:16", "duration": 8,
                                  "prompt_extend": True, "watermark": True}
    assert body["input"] == {"prompt": "p"}


def test_size_models_map_resolution_and_ratio_to_standard_size():
    shot = Shot("s", "x", "wan2.6-t2v", W, prompt="p", resolution="720P", ratio="16:9",
                shot_type="multi")
    req = request.build(shot, 1, {}, {})
    assert req.body["parameters"]["size"] == "1280*720"
    assert req.body["parameters"]["shot_type"] == "multi"
    assert (req.width, req.height) == (1280, 720)
    old = Shot("s", "x", "wan2.2-t2v-plus", W, prompt="p", size="832*480", seed=12345)
    p = request.build(old, 1, {}, {}).body["parameters"]
    assert p["size"] == "832*480" and p["seed"] == 12345 and "resolution" not in p


def test_kf2v_goes_to_image2video_with_both_frames_and_no_duration():
    shot = Shot("s", "x", "wan2.2-kf2v-flash", W, prompt="zoom", resolution="480P",
                inputs=(Input("first_frame", asset="a"), Input("last_frame", asset="b")))
    req = request.build(shot, 1, {"asset:a": IMG, "asset:b": IMG2}, {})
    assert req.endpoint.startswith("services/aigc/image2video")
    assert req.body["input"]["first_frame_url"] == "sha256:" + "a" * 64
    assert req.body["input"]["last_frame_url"] == "sha256:" + "b" * 64
    assert "duration" not in req.body["parameters"] and req.duration == 5


def test_wan27_i2v_media_with_driving_audio_from_a_frame_reference():
    shot = Shot("s", "x", "wan2.7-i2v", W, prompt="sing", audio="v",
                inputs=(Input("first_frame", ref=ShotRef("s.a", "last")),))
    src = request.ref_source(ShotRef("s.a", "last"), 1)
    req = request.build(shot, 1, {src: IMG, "asset:v": AUD}, {"s.a": 1})
    assert req.body["input"]["media"] == [
        {"type": "first_frame", "url": "sha256:" + "a" * 64},
        {"type": "driving_audio", "url": "sha256:" + "c" * 64}]
    assert request.input_sources(shot, {"s.a": 1}) == ["frame:s.a#1:last", "asset:v"]


def test_wan26_r2v_reference_urls_and_legacy_i2v_img_url():
    r2v = Shot("s", "x", "wan2.6-r2v", W, prompt="character1 waves", size="1920*1080",
               inputs=(Input("reference_image", asset="a"), Input("reference_video", asset="b")))
    body = request.build(r2v, 1, {"asset:a": IMG, "asset:b": IMG2}, {}).body
    assert body["input"]["reference_urls"] == ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
    i2v = Shot("s", "y", "wan2.6-i2v-flash", W, prompt="push in", generate_audio=False,
               inputs=(Input("first_frame", asset="a"),))
    body = request.build(i2v, 1, {"asset:a": IMG}, {}).body
    assert body["input"]["img_url"] == "sha256:" + "a" * 64
    assert body["parameters"]["audio"] is False and body["parameters"]["resolution"] == "1080P"


def test_substitute_swaps_placeholders_for_urls():
    body = {"input": {"media": [{"url": "sha256:" + "a" * 64}], "prompt": "p"}}
    out = request.substitute(body, {"a" * 64: "oss://x/y.png"})
    assert out == {"input": {"media": [{"url": "oss://x/y.png"}], "prompt": "p"}}


def test_cue_and_roles_ride_along_but_are_never_sent_or_keyed():
    shot = Shot("s", "x", "wan2.2-kf2v-flash", W, prompt="zoom", resolution="480P",
                inputs=(Input("first_frame", asset="a"), Input("last_frame", asset="b")))
    blobs = {"asset:a": IMG, "asset:b": IMG2}
    plain = request.build(shot, 1, blobs, {})
    cued = request.build(shot, 1, blobs, {}, cue=request.Cue(4.5, 12.25))
    assert cued.body == plain.body and cued.cue == request.Cue(4.5, 12.25)
    assert cued.roles == (("first_frame", "a" * 64), ("last_frame", "b" * 64))
