"""The emulator's request validation: what each model family accepts and refuses."""
from __future__ import annotations

import emulator_helpers
import pytest
from emulator_helpers import (
    AUTH,
    I2V_PATH,
    PNG,
    VS,
    H,
    assert_error,
    make_body,
    submit,
    t2v,
    task_id,
    wait,
)

from wanflow import media

make_emu = emulator_helpers.make_emu
client = emulator_helpers.client


INVALID = [
    ("unknown model", VS, H, make_body("wan9-t2v", {"prompt": "x"}), 404, "ModelNotFound",
     ["wan9-t2v"]),
    ("size on wan2.7", VS, H, make_body("wan2.7-t2v", {"prompt": "x"}, size="1280*720"), 400,
     "InvalidParameter", ["parameters.size", "720P", "1080P"]),
    ("resolution on wan2.2-t2v-plus", VS, H,
     make_body("wan2.2-t2v-plus", {"prompt": "x"}, resolution="480P"),
     400, "InvalidParameter", ["parameters.resolution", "832*480"]),
    ("duration 7 on wan2.2-t2v-plus", VS, H,
     make_body("wan2.2-t2v-plus", {"prompt": "x"}, size="832*480", duration=7),
     400, "InvalidParameter", ["parameters.duration", "allowed: 5"]),
    ("480P size on wan2.6-t2v", VS, H, make_body("wan2.6-t2v", {"prompt": "x"}, size="832*480"),
     400, "InvalidParameter", ["parameters.size", "1280*720"]),
    ("kf2v on the video-synthesis path", VS, H,
     make_body("wan2.2-kf2v-flash", {"first_frame_url": PNG, "last_frame_url": PNG}),
     400, "InvalidURL", ["url error, please check url!"]),
    ("t2v on the image2video path", I2V_PATH, H, t2v(), 400, "InvalidURL", ["url error"]),
    ("missing async header", VS, AUTH, t2v(), 403, "AccessDenied",
     ["does not support synchronous calls"]),
    ("bad key", VS, {**H, "Authorization": "Bearer sk-wrong"}, t2v(), 401, "InvalidApiKey", []),
    ("no key", VS, {"X-DashScope-Async": "enable"}, t2v(), 401, "InvalidApiKey", []),
    ("multi without prompt_extend", VS, H,
     make_body("wan2.6-t2v", {"prompt": "x"}, size="1280*720", shot_type="multi",
               prompt_extend=False),
     400, "InvalidParameter", ["shot_type", "prompt_extend"]),
    ("shot_type on wan2.2", VS, H,
     make_body("wan2.2-t2v-plus", {"prompt": "x"}, shot_type="single"),
     400, "InvalidParameter", ["parameters.shot_type"]),
    ("missing model", VS, H, {"input": {"prompt": "x"}}, 400, "BadRequest.EmptyModel", []),
    ("missing input", VS, H, {"model": "wan2.6-t2v", "parameters": {}}, 400,
     "BadRequest.EmptyInput", []),
    ("t2v without prompt", VS, H, make_body("wan2.6-t2v", {"negative_prompt": "blur"}), 400,
     "InvalidParameter", ["input.prompt"]),
    ("i2v without img_url", VS, H, make_body("wan2.6-i2v", {"prompt": "x"}), 400,
     "InvalidParameter", ["input.img_url"]),
    ("size on an i2v model", VS, H, make_body("wan2.6-i2v", {"img_url": PNG}, size="1280*720"), 400,
     "InvalidParameter", ["parameters.size", "parameters.resolution"]),
    ("ratio on an i2v model", VS, H, make_body("wan2.6-i2v", {"img_url": PNG}, ratio="1:1"), 400,
     "InvalidParameter", ["parameters.ratio"]),
    ("bad ratio on wan2.7", VS, H, make_body("wan2.7-t2v", {"prompt": "x"}, ratio="2:1"), 400,
     "InvalidParameter", ["parameters.ratio", "16:9"]),
    ("kf2v without last frame", I2V_PATH, H,
     make_body("wan2.2-kf2v-flash", {"first_frame_url": PNG}),
     400, "InvalidParameter", ["input.last_frame_url"]),
    ("kf2v duration 10", I2V_PATH, H,
     make_body("wan2.2-kf2v-flash", {"first_frame_url": PNG, "last_frame_url": PNG}, duration=10),
     400, "InvalidParameter", ["parameters.duration"]),
    ("r2v with six references", VS, H,
     make_body("wan2.6-r2v", {"prompt": "x", "reference_urls": [PNG] * 6}), 400, "InvalidParameter",
     ["input.reference_urls", "1..5"]),
    ("r2v with four videos", VS, H,
     make_body("wan2.6-r2v", {"prompt": "x",
                              "reference_urls": [f"https://e.com/{i}.mp4" for i in range(4)]}),
     400, "InvalidParameter", ["input.reference_urls", "at most 3"]),
    ("wan2.7-i2v bad media combo", VS, H,
     make_body("wan2.7-i2v", {"media": [{"type": "last_frame", "url": PNG}]}),
     400, "InvalidParameter", ["input.media", "first_frame"]),
    ("unknown media type", VS, H,
     make_body("wan2.7-i2v", {"media": [{"type": "poster", "url": PNG}]}), 400, "InvalidParameter",
     ["input.media[0].type"]),
    ("ftp url", VS, H, make_body("wan2.6-i2v", {"img_url": "ftp://e.com/a.png"}), 400,
     "InvalidParameter", ["input.img_url"]),
    ("audio_url on a silent model", VS, H,
     make_body("wan2.2-t2v-plus", {"prompt": "x", "audio_url": "https://e.com/a.mp3"}), 400,
     "InvalidParameter", ["input.audio_url"]),
    ("string duration", VS, H, make_body("wan2.6-t2v", {"prompt": "x"}, duration="5"), 400,
     "InvalidParameter", ["parameters.duration"]),
]


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_submits(make_emu, client, case):
    _, path, headers, body, status, code, fragments = case
    emu = make_emu()
    assert_error(submit(client, emu, body, path=path, headers=headers), status, code, *fragments)
    assert emu.submissions() == []


VALID = [
    ("sdk extra input keys", VS,
     make_body("wan2.6-t2v", {"prompt": "x", "function": "video-synthesis", "extend_prompt": True},
               size="1920*1080")),
    ("defaults only", VS, make_body("wan2.7-t2v", {"prompt": "x"})),
    ("multi shot", VS, make_body("wan2.6-t2v", {"prompt": "x"}, shot_type="multi", duration=15)),
    ("i2v data uri + audio", VS,
     make_body("wan2.6-i2v-flash", {"img_url": PNG, "audio_url": "https://e.com/a.mp3"},
               resolution="720P", audio=False, duration=2)),
    ("kf2v template", I2V_PATH,
     make_body("wanx2.1-kf2v-plus", {"first_frame_url": PNG, "template": "hug"})),
    ("r2v references", VS, make_body("wan2.6-r2v", {"prompt": "character1 waves",
                                                "reference_urls": ["https://e.com/p.mp4", PNG]},
                                 size="1280*720", duration=10)),
    ("wan2.7-i2v first+last+audio", VS, make_body("wan2.7-i2v", {"media": [
        {"type": "first_frame", "url": PNG}, {"type": "last_frame", "url": PNG},
        {"type": "driving_audio", "url": "https://e.com/v.mp3"}]}, resolution="720P")),
    ("wan2.7-r2v media", VS, make_body("wan2.7-r2v", {"prompt": "Image 1 dances", "media": [
        {"type": "reference_image", "url": PNG, "reference_voice": "https://e.com/v.wav"},
        {"type": "reference_video", "url": "https://e.com/v.mp4"}]}, ratio="1:1", duration=10)),
    ("dated snapshot", VS, make_body("wan2.7-t2v-2026-06-12", {"prompt": "x"}, resolution="720P")),
    ("wan2.1 alias", VS, make_body("wan2.1-t2v-turbo", {"prompt": "x"}, size="832*480")),
]


@pytest.mark.parametrize("case", VALID, ids=[c[0] for c in VALID])
def test_valid_submits(make_emu, client, case):
    _, path, body = case
    emu = make_emu()
    tid = task_id(submit(client, emu, body, path=path))
    assert [s["task_id"] for s in emu.submissions()] == [tid]
    assert emu.submissions()[0]["body"] == body


def test_geometry_of_rendered_video(make_emu, client, tmp_path):
    """wan2.7 resolution+ratio maps to the standard sizes; i2v without ratio renders 16:9."""
    emu = make_emu()
    out = wait(client, emu, task_id(submit(client, emu, t2v(
        "wan2.7-t2v", resolution="720P", ratio="9:16", duration=2))))["output"]
    (tmp_path / "a.mp4").write_bytes(client.get(out["video_url"]).content)
    p = media.probe(tmp_path / "a.mp4")
    assert (p.width, p.height) == (180, 320)
    body = {"model": "wan2.2-kf2v-flash", "input": {"first_frame_url": PNG, "last_frame_url": PNG},
            "parameters": {"resolution": "480P"}}
    out = wait(client, emu, task_id(submit(client, emu, body, path=I2V_PATH)))["output"]
    (tmp_path / "b.mp4").write_bytes(client.get(out["video_url"]).content)
    p = media.probe(tmp_path / "b.mp4")
    assert (p.width, p.height) == (208, 120)  # 832*480 * 0.25
    assert p.duration == pytest.approx(5.0, abs=0.1) and p.fps == pytest.approx(24)



@pytest.mark.parametrize("model, inp, params, audible", [
    ("wan2.6-i2v-flash", {"img_url": PNG}, {"audio": False}, False),
    ("wan2.6-i2v-flash", {"img_url": PNG}, {}, True),
    ("wan2.6-i2v", {"img_url": PNG}, {"audio": False}, True),
    ("wan2.7-t2v", {}, {"audio": False}, False),
    ("wan2.6-t2v", {}, {"audio": False}, True),
    ("wan2.2-t2v-plus", {}, {}, False),
])
def test_audio_switch_only_where_the_model_takes_it(make_emu, client, model, inp, params,
                                                    audible):
    """`parameters.audio: false` silences the models that take it; the others ignore the
    unknown parameter (reference §1.4) and keep their sound; silent models stay silent."""
    emu = make_emu()
    tid = task_id(submit(client, emu, make_body(model, {"prompt": "x", **inp}, **params)))
    assert emu.tasks()[tid]["audible"] is audible
