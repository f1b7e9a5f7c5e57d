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


VID = Blob("d" * 64, "video/mp4", seconds=6.0)
PDF = Blob("e" * 64, "application/pdf")


def test_wan3_references_in_order_with_defaults_explicit_where_sources_agree():
    shot = Shot("s", "x", "wan3.0-video", W, prompt="Image 1 hums Audio 1", duration="auto",
                inputs=(Input("reference_image", asset="a"), Input("reference_audio", asset="v"),
                        Input("reference_video", ref=ShotRef("s.y"))))
    src = request.ref_source(ShotRef("s.y"), 1)
    req = request.build(shot, 1, {"asset:a": IMG, "asset:v": AUD, src: VID}, {"s.y": 1})
    assert req.body["input"]["media"] == [
        {"type": "reference_image", "url": "sha256:" + "a" * 64},
        {"type": "reference_audio", "url": "sha256:" + "c" * 64},
        {"type": "reference_video", "url": "sha256:" + "d" * 64}]
    # duration auto goes as -1; ratio and resolution are the API's defaults made explicit;
    # prompt_extend, on which sources disagree, is sent only when the spec sets it
    assert req.body["parameters"] == {"resolution": "1080P", "ratio": "adaptive",
                                      "duration": -1, "watermark": False}
    assert req.duration == 5.0   # what a preview renders while the model would choose
    told = Shot("s", "x", "wan3.0-video", W, prompt="p", prompt_extend=False, duration=25)
    assert request.build(told, 1, {}, {}).body["parameters"]["prompt_extend"] is False
    assert "media" not in request.build(told, 1, {}, {}).body["input"]   # text to video


def test_wan3_leaves_out_what_it_dropped_and_reads_documents_with_thinking():
    # Only `defaults` can bring a dropped parameter this far (the checker refuses the rest).
    shot = Shot("s", "x", "wan3.0-video", W, prompt="p", negative_prompt="blur", size="1280*720",
                shot_type="multi", audio="v", resolution="720P", ratio="16:9",
                inputs=(Input("file", asset="doc"),))
    assert request.input_sources(shot, {}) == ["asset:doc"]
    req = request.build(shot, 1, {"asset:doc": PDF}, {})
    assert req.body["input"] == {"prompt": "p", "media": [
        {"type": "file", "url": "sha256:" + "e" * 64}]}
    assert req.body["parameters"] == {"resolution": "720P", "ratio": "16:9", "duration": 5,
                                      "watermark": False, "enable_thinking": True}
    assert (req.width, req.height) == (1280, 720)
    link = Shot("s", "x", "wan3.0-video-prime", W, prompt="p", enable_thinking=False,
                link="https://e.com/story")
    body = request.build(link, 1, {}, {}).body
    assert body["input"]["media"] == [{"type": "link", "url": "https://e.com/story"}]
    assert body["parameters"]["enable_thinking"] is False


def test_wan3_first_frame_keeps_its_aspect_when_adaptive():
    shot = Shot("s", "x", "wan3.0-video", W, prompt="p", resolution="480P",
                inputs=(Input("first_frame", asset="a"),))
    req = request.build(shot, 1, {"asset:a": IMG}, {})
    assert req.aspect_from_input and req.body["input"]["media"][0]["type"] == "first_frame"
    fixed = Shot("s", "x", "wan3.0-video", W, prompt="p", ratio="9:16",
                 inputs=(Input("first_frame", asset="a"),))
    assert not request.build(fixed, 1, {"asset:a": IMG}, {}).aspect_from_input


def test_videoedit_sends_its_source_first_and_keeps_the_source_length():
    shot = Shot("s", "x", "wan2.7-videoedit", W, prompt="ink", resolution="720P",
                inputs=(Input("video", ref=ShotRef("s.y")), Input("reference_image", asset="a")))
    src = request.ref_source(ShotRef("s.y"), 2)
    req = request.build(shot, 1, {src: VID, "asset:a": IMG}, {"s.y": 2})
    assert req.body["input"]["media"] == [{"type": "video", "url": "sha256:" + "d" * 64},
                                          {"type": "reference_image", "url": "sha256:" + "a" * 64}]
    # no ratio: the edit keeps its source's; duration `source` is sent as 0
    assert req.body["parameters"] == {"resolution": "720P", "duration": 0, "prompt_extend": True,
                                      "watermark": False, "audio_setting": "auto"}
    assert req.duration == 6.0 and req.aspect_from_input
    cut = Shot("s", "x", "wan2.7-videoedit", W, prompt="ink", duration=3, ratio="1:1",
               audio_setting="origin", inputs=(Input("video", asset="clip"),))
    p = request.build(cut, 1, {"asset:clip": VID}, {}).body["parameters"]
    assert (p["duration"], p["ratio"], p["audio_setting"]) == (3, "1:1", "origin")
