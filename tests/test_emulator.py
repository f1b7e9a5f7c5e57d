"""The emulator's server: a task's life over HTTP, downloads, the request log, the control
API, the official SDK against it, and `serve()`."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import emulator_helpers
import httpx
import pytest
from emulator_helpers import (
    I2V_PATH,
    KEY,
    VS,
    H,
    assert_error,
    poll,
    submit,
    t2v,
    task_id,
)

from wanflow import media
from wanflow.backends.emulator import (
    Faults,
)

make_emu = emulator_helpers.make_emu
client = emulator_helpers.client


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
    actual = out["actual_prompt"]
    assert actual.startswith("A kite. Over the dunes") and len(actual) > 30
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


def test_control_endpoints(make_emu, client):
    emu = make_emu()
    r = client.post(emu.url + "/_emulator/faults", json={"submit_429": 1, "fail_prompts": ["x"]})
    assert r.status_code == 200
    assert r.json()["submit_429"] == 1 and r.json()["fail_prompts"] == ["x"]
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
    assert bad.status_code == 400 and bad.code == "InvalidParameter"
    assert "parameters.size" in bad.message
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
    first_four = sorted(r["path"] for r in log[:4])
    assert first_four == ["/api/v1/uploads", "/api/v1/uploads", "/oss", "/oss"]
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
