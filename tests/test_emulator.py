"""The DashScope emulator, driven over real loopback HTTP with httpx and the official SDK."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from wanflow import media, models
from wanflow.backends.emulator import Emulator, Faults, options_from_cli, parse_faults, parse_latency

KEY = "sk-test"
H = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
AUTH = {"Authorization": f"Bearer {KEY}"}
VS = "/services/aigc/video-generation/video-synthesis"
I2V_PATH = "/services/aigc/image2video/video-synthesis"
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ"
       "GAhKmMIQAAAABJRU5ErkJggg==")
ENVELOPE = {"request_id", "code", "message"}


@pytest.fixture
def make_emu():
    started = []

    def make(**kw) -> Emulator:
        kw.setdefault("render_scale", 0.25)
        kw.setdefault("latency", (0.0, 0.0))
        emu = Emulator(**kw).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def client():
    with httpx.Client(timeout=20) as c:
        yield c


def t2v(model="wan2.6-t2v", prompt="a red kite over the dunes", **params) -> dict:
    if not params:
        params = {"size": "1280*720", "duration": 2}
    return {"model": model, "input": {"prompt": prompt}, "parameters": params}


def submit(client, emu, body, path=VS, headers=H):
    return client.post(emu.base_url + path, json=body, headers=headers)


def task_id(resp) -> str:
    assert resp.status_code == 200, resp.text
    return resp.json()["output"]["task_id"]


def poll(client, emu, tid):
    r = client.get(f"{emu.base_url}/tasks/{tid}", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def wait(client, emu, tid, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        out = poll(client, emu, tid)
        if out["output"]["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            return out
        assert time.time() < deadline, out
        time.sleep(0.05)


def assert_error(resp, status, code, *fragments):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == ENVELOPE, body
    assert body["code"] == code, body
    for frag in fragments:
        assert frag in body["message"], body
    return body


# --------------------------------------------------------------------------- lifecycle

def test_lifecycle_and_download(make_emu, client, tmp_path):
    emu = make_emu(latency=(4.0, 4.0), time_scale=2.0)  # 2 s of wall time, 0.2 s PENDING
    r = submit(client, emu, t2v(prompt="A kite. Over the dunes"))
    body = r.json()
    assert set(body) == {"request_id", "output"}
    assert body["output"]["task_status"] == "PENDING"
    tid = body["output"]["task_id"]

    seen = []
    deadline = time.time() + 10
    while True:
        out = poll(client, emu, tid)["output"]
        if not seen or seen[-1] != out["task_status"]:
            seen.append(out["task_status"])
        if out["task_status"] == "SUCCEEDED":
            break
        assert time.time() < deadline
        time.sleep(0.03)
    assert seen == ["PENDING", "RUNNING", "SUCCEEDED"]

    full = poll(client, emu, tid)
    out = full["output"]
    for name in ("submit_time", "scheduled_time", "end_time"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", out[name]), out
    assert out["orig_prompt"] == "A kite. Over the dunes"
    assert out["actual_prompt"].startswith("A kite. Over the dunes") and len(out["actual_prompt"]) > 30
    assert full["usage"] == {"duration": 2, "input_video_duration": 0, "output_video_duration": 2,
                             "video_count": 1, "SR": 720, "ratio": "16:9"}
    assert "code" not in full

    v = client.get(out["video_url"])
    assert v.status_code == 200
    assert v.headers["content-type"] == "video/mp4"
    assert v.headers["accept-ranges"] == "bytes"
    assert int(v.headers["content-length"]) == len(v.content)
    path = tmp_path / "clip.mp4"
    path.write_bytes(v.content)
    p = media.probe(path)
    assert (p.width, p.height) == (320, 180)  # 1280*720 at render_scale 0.25
    assert p.duration == pytest.approx(2.0, abs=0.1)
    assert p.fps == pytest.approx(30)
    assert p.video_codec == "h264" and p.has_audio

    part = client.get(out["video_url"], headers={"Range": "bytes=100-"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-{len(v.content) - 1}/{len(v.content)}"
    assert part.content == v.content[100:]
    head = client.head(out["video_url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(v.content)
    bad = client.get(out["video_url"], headers={"Range": f"bytes={len(v.content) + 5}-"})
    assert bad.status_code == 416
    tampered = client.get(out["video_url"].replace("Expires=", "Expires=1"))
    assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content


@pytest.mark.parametrize("model, params, usage", [
    ("wanx2.1-t2v-turbo", {"size": "832*480"},
     {"video_duration": 5, "video_ratio": "832*480", "video_count": 1}),
    ("wan2.2-t2v-plus", {"size": "832*480", "duration": 5},
     {"video_duration": 5, "video_count": 1, "SR": 480}),
    ("wan2.7-t2v", {"resolution": "720P", "ratio": "9:16", "duration": 3},
     {"duration": 3, "input_video_duration": 0, "output_video_duration": 3, "video_count": 1,
      "SR": 720, "ratio": "9:16"}),
])
def test_usage_keys_follow_model_generation(make_emu, client, model, params, usage):
    emu = make_emu()
    done = wait(client, emu, task_id(submit(client, emu, t2v(model, **params))))
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert done["usage"] == usage


def test_geometry_of_rendered_video(make_emu, client, tmp_path):
    """wan2.7 resolution+ratio maps through models.SIZES; i2v without ratio renders 16:9."""
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


# --------------------------------------------------------------------------- validation

def _body(model, inp, **params):
    return {"model": model, "input": inp, "parameters": params}


INVALID = [
    ("unknown model", VS, H, _body("wan9-t2v", {"prompt": "x"}), 404, "ModelNotFound", ["wan9-t2v"]),
    ("size on wan2.7", VS, H, _body("wan2.7-t2v", {"prompt": "x"}, size="1280*720"), 400,
     "InvalidParameter", ["parameters.size", "720P", "1080P"]),
    ("resolution on wan2.2-t2v-plus", VS, H, _body("wan2.2-t2v-plus", {"prompt": "x"}, resolution="480P"),
     400, "InvalidParameter", ["parameters.resolution", "832*480"]),
    ("duration 7 on wan2.2-t2v-plus", VS, H,
     _body("wan2.2-t2v-plus", {"prompt": "x"}, size="832*480", duration=7), 400, "InvalidParameter",
     ["parameters.duration", "allowed: 5"]),
    ("480P size on wan2.6-t2v", VS, H, _body("wan2.6-t2v", {"prompt": "x"}, size="832*480"), 400,
     "InvalidParameter", ["parameters.size", "1280*720"]),
    ("kf2v on the video-synthesis path", VS, H,
     _body("wan2.2-kf2v-flash", {"first_frame_url": PNG, "last_frame_url": PNG}), 400, "InvalidURL",
     ["url error, please check url!"]),
    ("t2v on the image2video path", I2V_PATH, H, t2v(), 400, "InvalidURL", ["url error"]),
    ("missing async header", VS, AUTH, t2v(), 403, "AccessDenied",
     ["does not support synchronous calls"]),
    ("bad key", VS, {**H, "Authorization": "Bearer sk-wrong"}, t2v(), 401, "InvalidApiKey", []),
    ("no key", VS, {"X-DashScope-Async": "enable"}, t2v(), 401, "InvalidApiKey", []),
    ("multi without prompt_extend", VS, H,
     _body("wan2.6-t2v", {"prompt": "x"}, size="1280*720", shot_type="multi", prompt_extend=False),
     400, "InvalidParameter", ["shot_type", "prompt_extend"]),
    ("shot_type on wan2.2", VS, H, _body("wan2.2-t2v-plus", {"prompt": "x"}, shot_type="single"), 400,
     "InvalidParameter", ["parameters.shot_type"]),
    ("missing model", VS, H, {"input": {"prompt": "x"}}, 400, "BadRequest.EmptyModel", []),
    ("missing input", VS, H, {"model": "wan2.6-t2v", "parameters": {}}, 400, "BadRequest.EmptyInput", []),
    ("t2v without prompt", VS, H, _body("wan2.6-t2v", {"negative_prompt": "blur"}), 400,
     "InvalidParameter", ["input.prompt"]),
    ("i2v without img_url", VS, H, _body("wan2.6-i2v", {"prompt": "x"}), 400, "InvalidParameter",
     ["input.img_url"]),
    ("size on an i2v model", VS, H, _body("wan2.6-i2v", {"img_url": PNG}, size="1280*720"), 400,
     "InvalidParameter", ["parameters.size", "parameters.resolution"]),
    ("ratio on an i2v model", VS, H, _body("wan2.6-i2v", {"img_url": PNG}, ratio="1:1"), 400,
     "InvalidParameter", ["parameters.ratio"]),
    ("bad ratio on wan2.7", VS, H, _body("wan2.7-t2v", {"prompt": "x"}, ratio="2:1"), 400,
     "InvalidParameter", ["parameters.ratio", "16:9"]),
    ("kf2v without last frame", I2V_PATH, H, _body("wan2.2-kf2v-flash", {"first_frame_url": PNG}),
     400, "InvalidParameter", ["input.last_frame_url"]),
    ("kf2v duration 10", I2V_PATH, H,
     _body("wan2.2-kf2v-flash", {"first_frame_url": PNG, "last_frame_url": PNG}, duration=10), 400,
     "InvalidParameter", ["parameters.duration"]),
    ("r2v with six references", VS, H,
     _body("wan2.6-r2v", {"prompt": "x", "reference_urls": [PNG] * 6}), 400, "InvalidParameter",
     ["input.reference_urls", "1..5"]),
    ("r2v with four videos", VS, H,
     _body("wan2.6-r2v", {"prompt": "x", "reference_urls": [f"https://e.com/{i}.mp4" for i in range(4)]}),
     400, "InvalidParameter", ["input.reference_urls", "at most 3"]),
    ("wan2.7-i2v bad media combo", VS, H,
     _body("wan2.7-i2v", {"media": [{"type": "last_frame", "url": PNG}]}), 400, "InvalidParameter",
     ["input.media", "first_frame"]),
    ("unknown media type", VS, H,
     _body("wan2.7-i2v", {"media": [{"type": "poster", "url": PNG}]}), 400, "InvalidParameter",
     ["input.media[0].type"]),
    ("ftp url", VS, H, _body("wan2.6-i2v", {"img_url": "ftp://e.com/a.png"}), 400,
     "InvalidParameter", ["input.img_url"]),
    ("audio_url on a silent model", VS, H,
     _body("wan2.2-t2v-plus", {"prompt": "x", "audio_url": "https://e.com/a.mp3"}), 400,
     "InvalidParameter", ["input.audio_url"]),
    ("string duration", VS, H, _body("wan2.6-t2v", {"prompt": "x"}, duration="5"), 400,
     "InvalidParameter", ["parameters.duration"]),
]


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_submits(make_emu, client, case):
    _, path, headers, body, status, code, fragments = case
    emu = make_emu()
    assert_error(submit(client, emu, body, path=path, headers=headers), status, code, *fragments)
    assert emu.submissions() == []


VALID = [
    ("sdk extra input keys", VS, _body("wan2.6-t2v", {"prompt": "x", "function": "video-synthesis",
                                                      "extend_prompt": True}, size="1920*1080")),
    ("defaults only", VS, _body("wan2.7-t2v", {"prompt": "x"})),
    ("multi shot", VS, _body("wan2.6-t2v", {"prompt": "x"}, shot_type="multi", duration=15)),
    ("i2v data uri + audio", VS, _body("wan2.6-i2v-flash", {"img_url": PNG, "audio_url": "https://e.com/a.mp3"},
                                       resolution="720P", audio=False, duration=2)),
    ("kf2v template", I2V_PATH, _body("wanx2.1-kf2v-plus", {"first_frame_url": PNG, "template": "hug"})),
    ("r2v references", VS, _body("wan2.6-r2v", {"prompt": "character1 waves",
                                                "reference_urls": ["https://e.com/p.mp4", PNG]},
                                 size="1280*720", duration=10)),
    ("wan2.7-i2v first+last+audio", VS, _body("wan2.7-i2v", {"media": [
        {"type": "first_frame", "url": PNG}, {"type": "last_frame", "url": PNG},
        {"type": "driving_audio", "url": "https://e.com/v.mp3"}]}, resolution="720P")),
    ("wan2.7-r2v media", VS, _body("wan2.7-r2v", {"prompt": "Image 1 dances", "media": [
        {"type": "reference_image", "url": PNG, "reference_voice": "https://e.com/v.wav"},
        {"type": "reference_video", "url": "https://e.com/v.mp4"}]}, ratio="1:1", duration=10)),
    ("dated snapshot", VS, _body("wan2.7-t2v-2026-06-12", {"prompt": "x"}, resolution="720P")),
    ("wan2.1 alias", VS, _body("wan2.1-t2v-turbo", {"prompt": "x"}, size="832*480")),
]


@pytest.mark.parametrize("case", VALID, ids=[c[0] for c in VALID])
def test_valid_submits(make_emu, client, case):
    _, path, body = case
    emu = make_emu()
    tid = task_id(submit(client, emu, body, path=path))
    assert [s["task_id"] for s in emu.submissions()] == [tid]
    assert emu.submissions()[0]["body"] == body


def test_unknown_path_and_requests_log(make_emu, client):
    emu = make_emu()
    r = client.post(emu.base_url + "/services/aigc/nope/video-synthesis", json=t2v(), headers=H)
    assert_error(r, 400, "InvalidURL", "url error")
    submit(client, emu, t2v())
    log = emu.requests()
    assert [x["status"] for x in log] == [400, 200]
    assert log[1]["headers"]["Authorization"] == "Bearer ***"
    assert "sk-test" not in repr(log)
    assert log[1]["json"] == t2v() and log[1]["method"] == "POST"
    assert log[1]["path"] == "/api/v1" + VS


# --------------------------------------------------------------------------- quotas

def test_concurrency_quota(make_emu, client):
    emu = make_emu(latency=(20.0, 20.0), concurrency={"wan2.6-t2v": 2}, submit_rps=100)
    a = task_id(submit(client, emu, t2v()))
    task_id(submit(client, emu, t2v()))
    assert_error(submit(client, emu, t2v()), 429, "Throttling.RateQuota",
                 "Requests rate limit exceeded, please try again later.")
    task_id(submit(client, emu, t2v("wan2.7-t2v", resolution="720P")))  # other models unaffected
    r = client.post(f"{emu.base_url}/tasks/{a}/cancel", headers=AUTH)
    assert r.status_code == 200 and set(r.json()) == {"request_id"}
    task_id(submit(client, emu, t2v()))  # the slot is free again


def test_default_concurrency_comes_from_models(make_emu, client):
    emu = make_emu(latency=(20.0, 20.0), submit_rps=100)
    limit = models.lookup("wanx2.1-t2v-turbo").concurrency
    for _ in range(limit):
        task_id(submit(client, emu, t2v("wanx2.1-t2v-turbo", size="832*480")))
    assert_error(submit(client, emu, t2v("wanx2.1-t2v-turbo", size="832*480")), 429,
                 "Throttling.RateQuota")


def test_submit_rate_quota_and_retry_after(make_emu, client):
    emu = make_emu(submit_rps=2, concurrency=100, faults=Faults(retry_after=1.5))
    task_id(submit(client, emu, t2v()))
    task_id(submit(client, emu, t2v()))
    r = submit(client, emu, t2v())
    assert_error(r, 429, "Throttling.RateQuota", "rate limit exceeded")
    assert r.headers["retry-after"] == "1.5"
    time.sleep(1.05)
    task_id(submit(client, emu, t2v()))
    assert len(emu.submissions()) == 3


def test_query_rate_limit(make_emu, client):
    emu = make_emu(query_qps=5)
    tid = task_id(submit(client, emu, t2v()))
    codes = [client.get(f"{emu.base_url}/tasks/{tid}", headers=AUTH) for _ in range(7)]
    assert [r.status_code for r in codes[:5]] == [200] * 5
    assert_error(codes[5], 429, "Throttling")
    time.sleep(1.05)
    assert poll(client, emu, tid)["output"]["task_status"] == "SUCCEEDED"


# --------------------------------------------------------------------------- faults

def test_fault_submit_429(make_emu, client):
    emu = make_emu(faults=Faults(submit_429=2, retry_after=2))
    for _ in range(2):
        r = submit(client, emu, t2v())
        assert_error(r, 429, "Throttling.RateQuota")
        assert r.headers["retry-after"] == "2"
    task_id(submit(client, emu, t2v()))
    assert len(emu.submissions()) == 1 and emu.faults.submit_429 == 0


def test_fault_submit_5xx_creates_nothing(make_emu, client):
    emu = make_emu(faults=Faults(submit_5xx=1))
    assert_error(submit(client, emu, t2v()), 500, "InternalError")
    assert emu.submissions() == [] and emu.tasks() == {}
    task_id(submit(client, emu, t2v()))


def test_fault_submit_5xx_after_create(make_emu, client):
    emu = make_emu(faults=Faults(submit_5xx_after_create=1))
    assert_error(submit(client, emu, t2v()), 500, "InternalError")
    subs = emu.submissions()
    assert len(subs) == 1  # the task exists although the client never learnt its id
    done = wait(client, emu, subs[0]["task_id"])
    assert done["output"]["task_status"] == "SUCCEEDED"


def test_fault_submit_reset(make_emu, client):
    emu = make_emu(faults=Faults(submit_reset=1))
    with pytest.raises(httpx.TransportError):
        submit(client, emu, t2v())
    assert emu.submissions() == []
    assert emu.requests()[0]["status"] is None
    task_id(submit(client, emu, t2v()))


def test_fault_poll_5xx_and_429(make_emu, client):
    emu = make_emu(faults=Faults(poll_5xx=2, poll_429=1, retry_after=0.5))
    tid = task_id(submit(client, emu, t2v()))
    url = f"{emu.base_url}/tasks/{tid}"
    r = client.get(url, headers=AUTH)
    assert_error(r, 429, "Throttling")
    assert r.headers["retry-after"] == "0.5"
    assert_error(client.get(url, headers=AUTH), 503, "ServiceUnavailable")
    assert_error(client.get(url, headers=AUTH), 500, "InternalError")
    assert poll(client, emu, tid)["output"]["task_status"] == "SUCCEEDED"


@pytest.mark.parametrize("faults, code", [
    (Faults(fail_tasks=1), "InternalError"),
    (Faults(inspection_fail=1), "DataInspectionFailed"),
])
def test_fault_failed_tasks(make_emu, client, faults, code):
    emu = make_emu(faults=faults)
    done = wait(client, emu, task_id(submit(client, emu, t2v())))
    out = done["output"]
    assert out["task_status"] == "FAILED"
    assert out["code"] == code and out["message"]
    assert "video_url" not in out and "usage" not in done and "code" not in done
    assert out["end_time"]
    ok = wait(client, emu, task_id(submit(client, emu, t2v())))
    assert ok["output"]["task_status"] == "SUCCEEDED"


def test_fault_fail_prompts(make_emu, client):
    emu = make_emu(faults=Faults(fail_prompts=("forbidden",)))
    bad = wait(client, emu, task_id(submit(client, emu, t2v(prompt="a forbidden dance"))))
    assert bad["output"]["task_status"] == "FAILED"
    assert bad["output"]["code"] == "DataInspectionFailed"
    good = wait(client, emu, task_id(submit(client, emu, t2v(prompt="a lawful dance"))))
    assert good["output"]["task_status"] == "SUCCEEDED"


def test_fault_expired_urls(make_emu, client):
    emu = make_emu(faults=Faults(expired_urls=1))
    old = wait(client, emu, task_id(submit(client, emu, t2v())))["output"]["video_url"]
    r = client.get(old)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in r.content and b"Request has expired" in r.content
    new = wait(client, emu, task_id(submit(client, emu, t2v())))["output"]["video_url"]
    assert client.get(new).status_code == 200


def test_url_ttl(make_emu, client):
    emu = make_emu(url_ttl=0.5)
    url = wait(client, emu, task_id(submit(client, emu, t2v())))["output"]["video_url"]
    time.sleep(1.6)  # Expires has one-second resolution
    r = client.get(url)
    assert r.status_code == 403 and b"Request has expired" in r.content


def test_fault_truncated_download(make_emu, client):
    emu = make_emu(faults=Faults(truncated_downloads=1))
    url = wait(client, emu, task_id(submit(client, emu, t2v())))["output"]["video_url"]
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(url)
    whole = client.get(url)
    assert whole.status_code == 200 and int(whole.headers["content-length"]) == len(whole.content)
    # what the truncated answer looked like on the wire: a full Content-Length, half the bytes
    emu.faults.truncated_downloads = 1
    with httpx.Client(timeout=10) as c, c.stream("GET", url) as s:
        assert int(s.headers["content-length"]) == len(whole.content)
        got = b""
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in s.iter_raw():
                got += chunk
        assert len(got) == len(whole.content) // 2


def test_fault_download_reset(make_emu, client):
    emu = make_emu(faults=Faults(download_reset=1))
    url = wait(client, emu, task_id(submit(client, emu, t2v())))["output"]["video_url"]
    with pytest.raises(httpx.TransportError):
        client.get(url)
    assert client.get(url).status_code == 200


def test_fault_slow_ms(make_emu, client):
    emu = make_emu(faults=Faults(slow_ms=300))
    t0 = time.monotonic()
    task_id(submit(client, emu, t2v()))
    assert time.monotonic() - t0 >= 0.3
    emu.faults.slow_ms = 0
    task_id(submit(client, emu, t2v()))


def test_control_endpoints(make_emu, client):
    emu = make_emu()
    r = client.post(emu.url + "/_emulator/faults", json={"submit_429": 1, "fail_prompts": ["x"]})
    assert r.status_code == 200 and r.json()["submit_429"] == 1 and r.json()["fail_prompts"] == ["x"]
    assert emu.faults.submit_429 == 1 and emu.faults.fail_prompts == ("x",)
    assert client.post(emu.url + "/_emulator/faults", json={"nope": 1}).status_code == 400
    assert_error(submit(client, emu, t2v()), 429, "Throttling.RateQuota")
    tid = task_id(submit(client, emu, t2v(prompt="fine")))
    reqs = client.get(emu.url + "/_emulator/requests").json()
    assert [q["status"] for q in reqs] == [429, 200]  # control calls are not logged
    subs = client.get(emu.url + "/_emulator/submissions").json()
    assert [s["task_id"] for s in subs] == [tid]
    assert tid in client.get(emu.url + "/_emulator/tasks").json()
    assert client.post(emu.url + "/_emulator/reset").json() == {"ok": True}
    assert emu.requests() == [] and emu.submissions() == [] and emu.faults == Faults()
    assert poll(client, emu, tid)["output"]["task_status"] == "UNKNOWN"


# --------------------------------------------------------------------------- uploads

def _upload(client, emu, model, name="frame.png", data=b"\x89PNG fake", drop=()):
    pol = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": model},
                     headers=AUTH)
    assert pol.status_code == 200, pol.text
    d = pol.json()["data"]
    form = {"OSSAccessKeyId": d["oss_access_key_id"], "Signature": d["signature"],
            "policy": d["policy"], "key": f"{d['upload_dir']}/{name}",
            "x-oss-object-acl": d["x_oss_object_acl"],
            "x-oss-forbid-overwrite": d["x_oss_forbid_overwrite"],
            "success_action_status": "200", "x-oss-content-type": "image/png"}
    for k in drop:
        form.pop(k)
    r = client.post(d["upload_host"], data=form, files={"file": (name, data, "image/png")})
    return d, r, "oss://" + form["key"]


def test_get_policy_shape(make_emu, client):
    emu = make_emu()
    r = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": "wan2.6-i2v"},
                   headers=AUTH)
    body = r.json()
    assert set(body) == {"request_id", "data"}
    d = body["data"]
    assert set(d) == {"policy", "signature", "upload_dir", "upload_host", "oss_access_key_id",
                      "x_oss_object_acl", "x_oss_forbid_overwrite", "expire_in_seconds",
                      "max_file_size_mb", "capacity_limit_mb"}
    assert d["upload_host"] == emu.url + "/oss"
    assert d["expire_in_seconds"] == 300 and d["max_file_size_mb"] == 100
    assert d["x_oss_object_acl"] == "private" and d["x_oss_forbid_overwrite"] == "true"
    assert re.fullmatch(r"dashscope-instant/[0-9a-f]{32}/\d{4}-\d\d-\d\d/[0-9a-f-]{36}", d["upload_dir"])
    again = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": "wan2.6-i2v"},
                       headers=AUTH).json()["data"]
    assert again["upload_dir"] != d["upload_dir"]
    bad = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": "m"},
                     headers={"Authorization": "Bearer nope"})
    assert_error(bad, 401, "InvalidApiKey")


def test_upload_then_submit_oss_url(make_emu, client):
    emu = make_emu()
    model = "wan2.6-i2v-flash"
    _, r, oss = _upload(client, emu, model)
    assert r.status_code == 200 and r.content == b""
    assert emu.objects()[oss[len("oss://"):]]["model"] == model
    body = _body(model, {"prompt": "push in", "img_url": oss}, resolution="720P", duration=2)
    resolve = {**H, "X-DashScope-OssResourceResolve": "enable"}
    done = wait(client, emu, task_id(submit(client, emu, body, headers=resolve)))
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert_error(submit(client, emu, body), 400, "InvalidParameter", "input.img_url",
                 "X-DashScope-OssResourceResolve")
    other = _body("wan2.6-i2v", {"img_url": oss}, resolution="720P")
    assert_error(submit(client, emu, other, headers=resolve), 400, "InvalidParameter",
                 "input.img_url", model)
    missing = _body(model, {"img_url": oss + ".nope"}, resolution="720P")
    assert_error(submit(client, emu, missing, headers=resolve), 400, "InvalidParameter",
                 "input.img_url", "does not exist")


@pytest.mark.parametrize("drop", ["x-oss-object-acl", "x-oss-forbid-overwrite", "Signature"])
def test_upload_without_required_fields_is_denied(make_emu, client, drop):
    emu = make_emu()
    _, r, _ = _upload(client, emu, "wan2.6-i2v", drop=(drop,))
    assert r.status_code == 403
    assert r.content.startswith(b"<?xml") and b"<Error>" in r.content
    assert emu.objects() == {}


def test_upload_rules(make_emu, client):
    emu = make_emu()
    d, r, _ = _upload(client, emu, "wan2.6-i2v")
    assert r.status_code == 200
    # overwrite is forbidden
    form = {"OSSAccessKeyId": d["oss_access_key_id"], "Signature": d["signature"],
            "policy": d["policy"], "key": f"{d['upload_dir']}/frame.png", "x-oss-object-acl": "private",
            "x-oss-forbid-overwrite": "true", "success_action_status": "200"}
    again = client.post(d["upload_host"], data=form, files={"file": ("frame.png", b"x")})
    assert again.status_code == 409 and b"FileAlreadyExists" in again.content
    # the key must lie under the policy's upload_dir
    form["key"] = "elsewhere/frame.png"
    outside = client.post(d["upload_host"], data=form, files={"file": ("frame.png", b"x")})
    assert outside.status_code == 403


def test_upload_is_beijing_only(make_emu, client):
    emu = make_emu(region="singapore")
    r = client.get(emu.base_url + "/uploads", params={"action": "getPolicy", "model": "wan2.6-i2v"},
                   headers=AUTH)
    assert_error(r, 403, "AccessDenied", "Beijing")


# --------------------------------------------------------------------------- cancel / unknown / list

def test_cancel_pending_and_running(make_emu, client):
    emu = make_emu(latency=(6.0, 6.0), time_scale=2.0, concurrency=10)  # PENDING 0.3 s, RUNNING 2.7 s
    a = task_id(submit(client, emu, t2v()))
    r = client.post(f"{emu.base_url}/tasks/{a}/cancel", headers=AUTH)
    assert r.status_code == 200 and set(r.json()) == {"request_id"}
    out = poll(client, emu, a)["output"]
    assert out["task_status"] == "CANCELED" and "video_url" not in out
    b = task_id(submit(client, emu, t2v()))
    time.sleep(0.45)
    assert poll(client, emu, b)["output"]["task_status"] == "RUNNING"
    assert_error(client.post(f"{emu.base_url}/tasks/{b}/cancel", headers=AUTH), 400,
                 "UnsupportedOperation", "RUNNING")
    assert_error(client.post(f"{emu.base_url}/tasks/{a}/cancel", headers=AUTH), 400,
                 "UnsupportedOperation")
    assert_error(client.post(f"{emu.base_url}/tasks/{b}/cancel", headers={"Authorization": "Bearer x"}),
                 401, "InvalidApiKey")


def test_unknown_and_expired_tasks(make_emu, client):
    emu = make_emu(task_ttl=0.5)
    r = poll(client, emu, "0000-not-a-task")
    assert r["output"] == {"task_id": "0000-not-a-task", "task_status": "UNKNOWN"}
    assert set(r) == {"request_id", "output"}
    tid = task_id(submit(client, emu, t2v()))
    assert poll(client, emu, tid)["output"]["task_status"] == "SUCCEEDED"
    time.sleep(0.6)
    assert poll(client, emu, tid)["output"] == {"task_id": tid, "task_status": "UNKNOWN"}
    assert_error(client.get(f"{emu.base_url}/tasks/{tid}"), 401, "InvalidApiKey")


def test_list_tasks(make_emu, client):
    emu = make_emu(concurrency=100, submit_rps=100)
    ids = [task_id(submit(client, emu, t2v())) for _ in range(3)]
    ids.append(task_id(submit(client, emu, t2v("wan2.7-t2v", resolution="720P"))))
    emu.faults.fail_tasks = 1
    failed = task_id(submit(client, emu, t2v()))
    r = client.get(emu.base_url + "/tasks", params={"page_no": 1, "page_size": 2}, headers=AUTH)
    body = r.json()
    assert set(body) == {"request_id", "data", "total", "total_page", "page_no", "page_size"}
    assert body["total"] == 5 and body["total_page"] == 3 and len(body["data"]) == 2
    assert body["data"][0]["task_id"] == failed  # newest first
    row = body["data"][0]
    assert {"task_id", "task_status", "model_name", "submit_time"} <= set(row)
    only = client.get(emu.base_url + "/tasks", params={"model_name": "wan2.7-t2v"}, headers=AUTH).json()
    assert [x["task_id"] for x in only["data"]] == [ids[3]]
    st = client.get(emu.base_url + "/tasks", params={"status": "FAILED"}, headers=AUTH).json()
    assert [x["task_id"] for x in st["data"]] == [failed]
    future = client.get(emu.base_url + "/tasks", params={"start_time": "29990101000000"},
                        headers=AUTH).json()
    assert future["total"] == 0 and future["data"] == []
    assert_error(client.get(emu.base_url + "/tasks", params={"start_time": "yesterday"}, headers=AUTH),
                 400, "InvalidParameter", "start_time")


def test_determinism(make_emu, client):
    a = make_emu(seed=7, latency=(1.0, 100.0), time_scale=1000)
    b = make_emu(seed=7, latency=(1.0, 100.0), time_scale=1000)
    ids_a = [task_id(submit(client, a, t2v())) for _ in range(2)]
    ids_b = [task_id(submit(client, b, t2v())) for _ in range(2)]
    assert ids_a == ids_b
    ends = lambda e: [round(t["end_time"] - t["submit_time"], 6) for t in e.tasks().values()]  # noqa: E731
    assert ends(a) == ends(b)


# --------------------------------------------------------------------------- official SDK

@pytest.fixture
def sdk(monkeypatch):
    dashscope = pytest.importorskip("dashscope")
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    return dashscope


def test_official_sdk_async_call_and_wait(make_emu, client, sdk, monkeypatch, tmp_path):
    emu = make_emu(latency=(0.5, 0.5))
    monkeypatch.setattr(sdk, "base_http_api_url", emu.base_url)
    from dashscope import VideoSynthesis

    task = VideoSynthesis.async_call(model="wan2.6-t2v", prompt="a paper boat in the rain",
                                     api_key=KEY, size="1280*720", duration=2, seed=3)
    assert task.status_code == 200, task
    assert task.output.task_status == "PENDING"
    result = VideoSynthesis.wait(task, api_key=KEY)
    assert result.status_code == 200, result
    assert result.output.task_status == "SUCCEEDED"
    assert result.usage["duration"] == 2
    sent = emu.submissions()[0]["body"]
    assert sent["input"]["function"] == "video-synthesis"  # SDK artefact, tolerated
    v = client.get(result.output.video_url)
    assert v.status_code == 200
    (tmp_path / "sdk.mp4").write_bytes(v.content)
    p = media.probe(tmp_path / "sdk.mp4")
    assert (p.width, p.height) == (320, 180) and p.duration == pytest.approx(2.0, abs=0.1)

    bad = VideoSynthesis.async_call(model="wan2.6-t2v", prompt="x", api_key=KEY, size="832*480")
    assert bad.status_code == 400 and bad.code == "InvalidParameter" and "parameters.size" in bad.message
    denied = VideoSynthesis.async_call(model="wan2.6-t2v", prompt="x", api_key="sk-nope")
    assert denied.status_code == 401 and denied.code == "InvalidApiKey"
    listed = VideoSynthesis.list(api_key=KEY)
    assert listed.status_code == 200 and listed.output["total"] == 1


def test_official_sdk_uploads_local_files(make_emu, sdk, monkeypatch, tmp_path):
    emu = make_emu(latency=(0.3, 0.3))
    monkeypatch.setattr(sdk, "base_http_api_url", emu.base_url)
    from dashscope import VideoSynthesis
    from PIL import Image

    frame = tmp_path / "first.png"
    Image.new("RGB", (640, 360), (200, 40, 40)).save(frame)
    task = VideoSynthesis.async_call(model="wan2.2-kf2v-flash", prompt="slow zoom",
                                     first_frame_url=str(frame), last_frame_url=f"file://{frame}",
                                     api_key=KEY, resolution="480P")
    assert task.status_code == 200, task
    result = VideoSynthesis.wait(task, api_key=KEY)
    assert result.output.task_status == "SUCCEEDED", result
    body = emu.submissions()[0]["body"]
    assert body["input"]["first_frame_url"].startswith("oss://dashscope-instant/")
    assert body["input"]["last_frame_url"].startswith("oss://dashscope-instant/")
    assert len(emu.objects()) == 2
    log = emu.requests()
    # the SDK fetches a fresh policy per file and uploads the two frames concurrently
    assert sorted(r["path"] for r in log[:4]) == ["/api/v1/uploads", "/api/v1/uploads", "/oss", "/oss"]
    submit_rec = next(r for r in log if r["path"].endswith(I2V_PATH))
    assert submit_rec["headers"]["X-DashScope-OssResourceResolve"] == "enable"


def test_official_sdk_v2_client(make_emu, sdk, tmp_path):
    """The 2.x `dashscope.Client` (httpx transport) works too, and honours Retry-After on 429."""
    emu = make_emu(latency=(0.3, 0.3), faults=Faults(submit_429=1, retry_after=0.1))
    client = sdk.Client(api_key=KEY, base_url=emu.base_url)
    job = client.videos.generate(model="wan2.7-t2v", prompt="a lantern drifts", resolution="720P",
                                 ratio="1:1", duration=2, poll_interval=0.2)
    assert job.status == "SUCCEEDED" and job.video_url
    submits = [r["status"] for r in emu.requests() if r["method"] == "POST"]
    assert submits == [429, 200]  # the v2 transport retried the throttled submit itself
    with pytest.raises(Exception) as err:
        client.videos.jobs.create(model="wan2.7-t2v", prompt="x", size="1280*720")
    assert "InvalidParameter" in str(err.value) and "parameters.size" in str(err.value)


# --------------------------------------------------------------------------- CLI helpers

def test_cli_option_parsing():
    assert parse_latency("1:3") == (1.0, 3.0) and parse_latency("2") == (2.0, 2.0)
    with pytest.raises(ValueError):
        parse_latency("3:1")
    f = parse_faults(["submit_429=2", "fail_prompts=nsfw", "fail_prompts=gore|blood", "retry_after=1.5"])
    assert f.submit_429 == 2 and f.fail_prompts == ("nsfw", "gore", "blood") and f.retry_after == 1.5
    with pytest.raises(ValueError):
        parse_faults(["bogus=1"])
    opts = options_from_cli(latency="0.5:1", time_scale="10", faults=["poll_5xx=1"],
                            api_keys=["k1", "k2"], concurrency="wan2.7-t2v=3", submit_rps="4",
                            seed="5", render_scale="0.5")
    assert opts["latency"] == (0.5, 1.0) and opts["time_scale"] == 10.0
    assert opts["faults"].poll_5xx == 1 and opts["api_keys"] == ("k1", "k2")
    assert opts["concurrency"] == {"wan2.7-t2v": 3} and opts["submit_rps"] == 4.0
    assert opts["seed"] == 5 and opts["render_scale"] == 0.5
    Emulator(**opts)  # every option is a constructor keyword


def test_serve_runs_until_sigterm(tmp_path):
    code = ("from wanflow.backends.emulator import serve; "
            "serve('127.0.0.1', 0, latency=(0, 0), api_keys=('k',))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline().strip()
        m = re.fullmatch(r"wanflow emulator listening on (http://127\.0\.0\.1:\d+/api/v1)", line)
        assert m, line
        r = httpx.post(m.group(1) + VS, json=t2v(),
                       headers={"Authorization": "Bearer k", "X-DashScope-Async": "enable"})
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
