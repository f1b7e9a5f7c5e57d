"""The DashScope backend over real loopback HTTP against the emulator (plus MockTransport only
for answers the emulator cannot give: 502/503 on submit, 404 on poll, a server that ignores
Range, a provider echoing the key)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import pickle
import re
import socket
import time

import httpx
import pytest

from wanflow import models
from wanflow.backends.dashscope import UPLOAD_CACHE_FILE, DashScopeBackend
from wanflow.backends.dashscope.polling import PollSchedule, jittered
from wanflow.backends.emulator import Emulator, Faults
from wanflow.errors import (AuthError, BackendError, ConfigError, DownloadError, RateLimited,
                            SubmitUncertain, TaskFailed)
from wanflow.backends.base import Finished
from wanflow.plan.request import Blob, GenRequest, build, substitute
from wanflow.spec.nodes import Input, Shot, Where

KEY = "sk-secret-XYZ-7f3a9c1e5b2d4680"
W = Where("t.yaml")
SEEN_ERRORS: list[BaseException] = []


def run(coro):
    return asyncio.run(coro)


def shot(model, **kw) -> Shot:
    kw.setdefault("prompt", "a cheetah runs across the grassland")
    return Shot("s", "a", model, W, **kw)


def expect(exc_type, coro):
    """Run `coro`, require `exc_type`, and check the key appears nowhere in the error chain."""
    with pytest.raises(exc_type) as info:
        run(coro)
    no_secret(info.value)
    return info.value


def no_secret(exc: BaseException) -> None:
    SEEN_ERRORS.append(exc)
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for text in (str(exc), repr(exc), repr(exc.args), repr(vars(exc))):
            assert KEY not in text and KEY[3:] not in text, text
        exc = exc.__cause__ or exc.__context__


@pytest.fixture
def emu():
    with Emulator(api_keys=(KEY,), latency=(0.2, 0.5), render_scale=0.25, concurrency=100,
                  submit_rps=1000) as e:
        yield e


def make(base_url, tmp_path=None, **kw) -> DashScopeBackend:
    kw.setdefault("poll_first", 0.05)
    kw.setdefault("poll_max", 0.3)
    kw.setdefault("retry_backoff", 0.02)
    kw.setdefault("api_key", KEY)
    if tmp_path is not None:
        kw.setdefault("upload_cache_dir", str(tmp_path / "uploads"))
    return DashScopeBackend(base_url=base_url, **kw)


def api_calls(emu, sub: str, method: str | None = None) -> list[dict]:
    return [r for r in emu.requests() if r["path"].startswith("/api/v1/" + sub)
            and (method is None or r["method"] == method)]


def submits(emu) -> list[dict]:
    return [r for r in emu.requests() if "/services/aigc/" in r["path"]]


def write(path, data: bytes) -> tuple[str, str]:
    path.write_bytes(data)
    return str(path), hashlib.sha256(data).hexdigest()


class Recorder(httpx.AsyncBaseTransport):
    """Real loopback HTTP, remembering every request with its body."""

    def __init__(self):
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[httpx.Request, bytes]] = []

    async def handle_async_request(self, request):
        body = await request.aread()
        self.seen.append((request, body))
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


# ---------------------------------------------------------------- bodies and headers

URL_A = "https://assets.example.com/hero.png"
URL_B = "https://assets.example.com/end.png"
URL_V = "https://assets.example.com/ref.mp4"
URL_S = "https://assets.example.com/voice.mp3"
BLOBS = {"asset:a": Blob("a" * 64, "image/png", URL_A), "asset:b": Blob("b" * 64, "image/png", URL_B),
         "asset:v": Blob("c" * 64, "video/mp4", URL_V), "asset:s": Blob("d" * 64, "audio/mpeg", URL_S)}
FAMILIES = {
    "wan2.7-t2v": shot("wan2.7-t2v", resolution="720P", ratio="9:16", duration=8),
    "wan2.6-t2v": shot("wan2.6-t2v", size="1280*720", shot_type="multi", duration=10,
                       prompt_extend=True, seed=42, negative_prompt="blurry"),
    "wan2.2-t2v-plus": shot("wan2.2-t2v-plus", size="832*480", prompt_extend=False),
    "wan2.6-i2v-flash": shot("wan2.6-i2v-flash", resolution="720P", generate_audio=False,
                             inputs=(Input("first_frame", asset="a"),)),
    "wan2.2-kf2v-flash": shot("wan2.2-kf2v-flash", resolution="480P",
                              inputs=(Input("first_frame", asset="a"), Input("last_frame", asset="b"))),
    "wan2.6-r2v": shot("wan2.6-r2v", size="1920*1080", shot_type="multi",
                       prompt="character1 waves at character2",
                       inputs=(Input("reference_video", asset="v"), Input("reference_image", asset="a"))),
    "wan2.7-i2v": shot("wan2.7-i2v", resolution="1080P", duration=8, audio="s",
                       inputs=(Input("first_frame", asset="a"),)),
    "wan2.7-r2v": shot("wan2.7-r2v", resolution="720P", ratio="1:1",
                       inputs=(Input("reference_image", asset="a", voice="s", description="hero"),
                               Input("reference_video", asset="v"))),
}


@pytest.mark.parametrize("model", list(FAMILIES))
def test_every_protocol_family_reaches_the_server_exactly(emu, model):
    req = build(FAMILIES[model], 1, BLOBS, {})
    expected = substitute(req.body, {b.digest: b.url for b in BLOBS.values()})

    async def go():
        async with make(emu.base_url, workspace="ws-123") as backend:
            return await backend.submit(req, {})

    sub = run(go())
    [accepted] = emu.submissions()
    assert accepted["body"] == expected and accepted["task_id"] == sub.remote_id
    [call] = submits(emu)
    assert call["path"] == "/api/v1/" + req.endpoint
    assert ("image2video" in call["path"]) == (model == "wan2.2-kf2v-flash")
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["authorization"].startswith("Bearer ")
    assert headers["content-type"] == "application/json"
    assert headers["x-dashscope-async"] == "enable"
    assert headers["x-dashscope-workspace"] == "ws-123"
    assert "x-dashscope-ossresourceresolve" not in headers  # only https inputs
    assert sub.request_id


def test_spot_checks_of_the_wire_shapes(emu):
    bodies = {}
    for model in FAMILIES:
        bodies[model] = substitute(build(FAMILIES[model], 1, BLOBS, {}).body,
                                   {b.digest: b.url for b in BLOBS.values()})
    assert bodies["wan2.7-t2v"]["parameters"]["ratio"] == "9:16"
    assert bodies["wan2.6-t2v"]["parameters"]["shot_type"] == "multi"
    assert bodies["wan2.6-i2v-flash"]["input"]["img_url"] == URL_A
    assert bodies["wan2.6-i2v-flash"]["parameters"]["audio"] is False
    assert bodies["wan2.2-kf2v-flash"]["input"]["last_frame_url"] == URL_B
    assert bodies["wan2.6-r2v"]["input"]["reference_urls"] == [URL_V, URL_A]
    assert bodies["wan2.7-i2v"]["input"]["media"] == [
        {"type": "first_frame", "url": URL_A}, {"type": "driving_audio", "url": URL_S}]
    assert bodies["wan2.7-r2v"]["input"]["media"][0] == {
        "type": "reference_image", "url": URL_A, "reference_voice": URL_S,
        "reference_description": "hero"}


# ---------------------------------------------------------------- local files

I2V_MEDIA = shot("wan2.7-i2v", resolution="720P", audio="s", inputs=(Input("first_frame", asset="a"),))


def local_blobs(tmp_path):
    img, img_d = write(tmp_path / "hero.png", b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    aud, aud_d = write(tmp_path / "voice.wav", b"RIFF" + os.urandom(3000))
    blobs = {"asset:a": Blob(img_d, "image/png"), "asset:s": Blob(aud_d, "audio/wav")}
    return blobs, {img_d: img, aud_d: aud}


def test_local_files_upload_once_via_policy_and_oss_form_then_reuse(emu, tmp_path):
    blobs, files = local_blobs(tmp_path)
    req = build(I2V_MEDIA, 1, blobs, {})
    rec = Recorder()

    async def go():
        async with make(emu.base_url, tmp_path, transport=rec) as backend:
            first = await backend.submit(req, files)
            done = await backend.wait(first.remote_id, req)
            second = await backend.submit(req, files)
        async with make(emu.base_url, tmp_path) as other:  # a later run: the cache file
            third = await other.submit(req, files)
        return first, done, second, third

    first, done, second, third = run(go())
    assert done.status == "SUCCEEDED"
    # One credential for both files of the submit, two form uploads, nothing more later.
    assert len(api_calls(emu, "uploads")) == 1
    policy_call = api_calls(emu, "uploads")[0]
    assert policy_call["query"] == {"action": "getPolicy", "model": "wan2.7-i2v"}
    forms = [(r, body) for r, body in rec.seen if r.url.path == "/oss"]
    assert len(forms) == 2
    for request, body in forms:
        assert "authorization" not in request.headers  # the key never goes to OSS
        names = re.findall(rb'; name="([^"]+)"', body)
        assert names == [b"OSSAccessKeyId", b"Signature", b"policy", b"key", b"x-oss-object-acl",
                         b"x-oss-forbid-overwrite", b"success_action_status",
                         b"x-oss-content-type", b"file"]
        for name, value in ((b"x-oss-object-acl", b"private"), (b"x-oss-forbid-overwrite", b"true"),
                            (b"success_action_status", b"200")):
            assert re.search(rb'name="' + name + rb'"\r\n\r\n' + value + rb"\r\n", body)
    objects = emu.objects()
    assert sorted(o["content_type"] for o in objects.values()) == ["audio/wav", "image/png"]
    assert all(o["model"] == "wan2.7-i2v" for o in objects.values())
    # Every submit sent the same oss:// URLs with the resolve header.
    bodies = [s["body"] for s in emu.submissions()]
    assert bodies[0] == bodies[1] == bodies[2]
    urls = [m["url"] for m in bodies[0]["input"]["media"]]
    assert all(u.startswith("oss://") and u[6:] in objects for u in urls)
    for call in submits(emu):
        assert call["headers"]["X-DashScope-OssResourceResolve"] == "enable"
    cache = (tmp_path / "uploads" / UPLOAD_CACHE_FILE).read_text()
    assert KEY not in cache and KEY[3:] not in cache
    assert len(json.loads(cache)["entries"]) == 2
    assert not [p for p in os.listdir(tmp_path / "uploads") if p != UPLOAD_CACHE_FILE]


def test_expired_or_foreign_cache_entries_are_not_reused(emu, tmp_path):
    blobs, files = local_blobs(tmp_path)
    req = build(I2V_MEDIA, 1, blobs, {})
    cache_file = tmp_path / "uploads" / UPLOAD_CACHE_FILE

    def age(hours):
        data = json.loads(cache_file.read_text())
        for entry in data["entries"].values():
            entry["uploaded_at"] = time.time() - hours * 3600
        cache_file.write_text(json.dumps(data))

    async def submit_once(**kw):
        async with make(emu.base_url, tmp_path, **kw) as backend:
            return await backend.submit(req, files)

    run(submit_once())
    assert len(api_calls(emu, "uploads")) == 1
    age(46)  # still inside the 47 h reuse window
    run(submit_once())
    assert len(api_calls(emu, "uploads")) == 1
    age(47.01)  # past it: the 48 h object may vanish before the task reads it
    run(submit_once())
    assert len(api_calls(emu, "uploads")) == 2
    assert len(emu.objects()) == 4
    # Another account (key) does not see this account's uploads.
    emu.api_keys = (KEY, "sk-other-account")
    run(submit_once(api_key="sk-other-account"))
    assert len(api_calls(emu, "uploads")) == 3
    # A different model is a different upload (files are bound to the model).
    other = build(shot("wan2.6-i2v-flash", inputs=(Input("first_frame", asset="a"),)), 1, blobs, {})

    async def go():
        async with make(emu.base_url, tmp_path) as backend:
            await backend.submit(other, files)

    run(go())
    assert [c["query"]["model"] for c in api_calls(emu, "uploads")][-1] == "wan2.6-i2v-flash"
    assert len(emu.submissions()) == 5


def test_singapore_sends_images_inline_and_refuses_local_audio(tmp_path):
    blobs, files = local_blobs(tmp_path)
    img_d = blobs["asset:a"].digest
    i2v = build(shot("wan2.6-i2v-flash", inputs=(Input("first_frame", asset="a"),)), 1, blobs, {})
    t2v = build(shot("wan2.6-t2v", audio="s"), 1, blobs, {})
    with Emulator(api_keys=(KEY,), region="singapore", latency=(0.2, 0.3)) as emu:
        async def go():
            async with make(emu.base_url, tmp_path, region="singapore") as backend:
                assert not backend.supports_upload and backend.identity == "dashscope:custom"
                await backend.submit(i2v, files)
                err = None
                try:
                    await backend.submit(t2v, files)
                except ConfigError as exc:
                    err = exc
                return err

        err = run(go())
        [accepted] = emu.submissions()
        raw = open(files[img_d], "rb").read()
        assert accepted["body"]["input"]["img_url"] == \
            "data:image/png;base64," + base64.b64encode(raw).decode()
        assert not api_calls(emu, "uploads")
        assert len(submits(emu)) == 1  # the audio submit never left
    assert isinstance(err, ConfigError)
    no_secret(err)
    text = str(err)
    assert "voice.wav" in text and "audio/wav" in text and "https" in text and "singapore" in text


def test_oversized_inline_image_is_a_config_error(tmp_path, monkeypatch):
    blobs, files = local_blobs(tmp_path)
    monkeypatch.setattr(models, "DATA_URI_MAX_BYTES", 1000)
    req = build(shot("wan2.6-i2v-flash", inputs=(Input("first_frame", asset="a"),)), 1, blobs, {})

    def refuse(request):
        raise AssertionError("nothing may be sent")

    backend = DashScopeBackend(api_key=KEY, region="intl", transport=httpx.MockTransport(refuse))
    assert backend.base_url == models.REGIONS["singapore"]
    err = expect(ConfigError, backend.submit(req, files))
    assert "hero.png" in str(err) and "https URL" in str(err)


# ---------------------------------------------------------------- polling

T2V = build(shot("wan2.7-t2v", resolution="720P", duration=5), 1, {}, {})


def test_wait_returns_finished_with_usage_and_actual_prompt(emu):
    async def go():
        async with make(emu.base_url) as backend:
            sub = await backend.submit(T2V, {})
            return sub, await backend.wait(sub.remote_id, T2V)

    sub, done = run(go())
    assert isinstance(done, Finished) and done.remote_id == sub.remote_id
    assert done.status == "SUCCEEDED" and done.video_url.startswith("http://127.0.0.1")
    assert done.usage["duration"] == 5 and done.billed_seconds == 5.0
    assert done.actual_prompt and done.actual_prompt.startswith("a cheetah")
    assert done.request_id


def test_poll_schedule_first_near_expected_then_proportional_capped_and_urgent():
    s = PollSchedule(first=20.0, poll_max=30.0, timeout=1800.0)
    assert s.first_delay(0.0) == 20.0 and s.first_delay(-3.0) == 20.0
    assert s.first_delay(15.0) == 5.0 and s.first_delay(60.0) == 0.0  # a resumed wait
    assert s.next_delay(50.0, urgent=False, retry_after=None) == pytest.approx(10.0)
    assert s.next_delay(0.0, urgent=False, retry_after=None) == 1e-3
    assert s.next_delay(1000.0, urgent=False, retry_after=None) == 30.0
    assert s.next_delay(1000.0, urgent=True, retry_after=None) == pytest.approx(5.0)
    assert s.next_delay(50.0, urgent=False, retry_after=12.0) == 12.0
    assert all(9.0 <= jittered(10.0) <= 11.0 for _ in range(200))


def test_polls_stay_under_query_qps_across_concurrent_waits():
    qps, n = 8.0, 20
    with Emulator(api_keys=(KEY,), latency=(0.5, 1.5), concurrency=100, submit_rps=1000,
                  query_qps=qps) as emu:
        async def go():
            async with make(emu.base_url, query_qps=qps, poll_first=0.05, poll_max=0.2) as backend:
                subs = [await backend.submit(T2V, {}) for _ in range(n)]
                return await asyncio.gather(*(backend.wait(s.remote_id, T2V) for s in subs))

        done = run(go())
        polls = api_calls(emu, "tasks/", "GET")
    assert len(done) == n and all(d.status == "SUCCEEDED" for d in done)
    assert all(p["status"] == 200 for p in polls)  # the emulator's own 8 QPS window never fired
    times = sorted(p["time"] for p in polls)
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert qps - 2 <= busiest <= qps, busiest  # saturated, yet never over
    print(f"polls={len(polls)} busiest 1 s window={busiest} (limit {qps:g})")
    assert len(polls) >= n


def test_unknown_task_is_terminal_after_one_poll(emu):
    async def go():
        async with make(emu.base_url) as backend:
            await backend.wait("no-such-task", T2V)

    err = expect(TaskFailed, go())
    assert err.code == "UNKNOWN" and not err.retryable
    assert "expired" in str(err) and "no-such-task" in str(err)
    assert len(api_calls(emu, "tasks/")) == 1


def test_http_404_on_poll_is_unknown_too():
    def handler(request):
        return httpx.Response(404, json={"code": "NotFound", "message": "not found"})

    backend = make("https://dashscope.example/api/v1", transport=httpx.MockTransport(handler))
    err = expect(TaskFailed, backend.wait("gone", T2V))
    assert err.code == "UNKNOWN" and err.status == 404


def test_wait_timeout_names_task_elapsed_and_last_status():
    with Emulator(api_keys=(KEY,), latency=(30, 30)) as emu:
        async def go():
            async with make(emu.base_url, wait_timeout=0.6) as backend:
                sub = await backend.submit(T2V, {})
                started = time.monotonic()
                try:
                    await backend.wait(sub.remote_id, T2V)
                finally:
                    go.elapsed = time.monotonic() - started
                    go.task = sub.remote_id

        err = expect(BackendError, go())
    assert err.code == "WaitTimeout" and not err.retryable and not isinstance(err, TaskFailed)
    assert go.task in str(err) and "last status PENDING" in str(err) and "0.6 s" in str(err)
    assert 0.5 <= go.elapsed < 1.5


def test_poll_5xx_and_429_are_survived_without_resubmitting(emu):
    emu.faults.poll_5xx = 3
    emu.faults.poll_429 = 2
    emu.faults.retry_after = 0.1

    async def go():
        async with make(emu.base_url, poll_max=0.1) as backend:
            sub = await backend.submit(T2V, {})
            return await backend.wait(sub.remote_id, T2V)

    assert run(go()).status == "SUCCEEDED"
    statuses = [p["status"] for p in api_calls(emu, "tasks/")]
    assert statuses[:5].count(429) == 2 and sorted(statuses[:5])[2:] == [500, 503, 503]
    assert statuses[-1] == 200 and len(submits(emu)) == 1


def test_canceled_and_cancel_of_a_running_task(tmp_path):
    with Emulator(api_keys=(KEY,), latency=(20, 20)) as emu:  # 2 s PENDING
        async def go():
            async with make(emu.base_url) as backend:
                sub = await backend.submit(T2V, {})
                assert await backend.cancel(sub.remote_id) is True
                assert await backend.cancel(sub.remote_id) is False  # no longer PENDING
                assert await backend.cancel("no-such-task") is False
                await backend.wait(sub.remote_id, T2V)

        err = expect(TaskFailed, go())
    assert err.code == "Canceled" and not err.retryable


def test_list_tasks_reads_data_and_tasks_shapes(emu):
    async def go():
        async with make(emu.base_url) as backend:
            sub = await backend.submit(T2V, {})
            return sub, await backend.list_tasks(model_name="wan2.7-t2v", page_size=5)

    sub, rows = run(go())
    assert [r["task_id"] for r in rows] == [sub.remote_id]
    assert api_calls(emu, "tasks", "GET")[-1]["query"]["page_size"] == "5"

    def handler(request):
        return httpx.Response(200, json={"request_id": "r", "tasks": [{"task_id": "t1"}],
                                         "total": 1})

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(handler))
    assert run(backend.list_tasks()) == [{"task_id": "t1"}]


# ---------------------------------------------------------------- errors

def test_401_is_auth_error_without_the_key(emu):
    wrong = KEY + "-revoked"

    async def go():
        async with make(emu.base_url, api_key=wrong) as backend:
            await backend.submit(T2V, {})

    with pytest.raises(AuthError) as info:
        run(go())
    assert wrong not in str(info.value) and info.value.code == "InvalidApiKey"
    assert info.value.status == 401 and "Invalid API-key provided." in str(info.value)
    no_secret(info.value)


def test_429_is_rate_limited_with_retry_after(emu):
    emu.faults.submit_429 = 1
    emu.faults.retry_after = 2.5

    async def go():
        async with make(emu.base_url) as backend:
            await backend.submit(T2V, {})

    err = expect(RateLimited, go())
    assert err.retryable and err.retry_after == 2.5 and err.code == "Throttling.RateQuota"
    assert "Requests rate limit exceeded" in str(err) and not emu.submissions()


def test_400_carries_the_provider_code_and_message(emu):
    bad = GenRequest(model="wan2.6-t2v", endpoint=models.VIDEO_SYNTHESIS,
                     body={"model": "wan2.6-t2v", "input": {"prompt": "p"},
                           "parameters": {"size": "832*480", "duration": 5}},
                     blobs=(), take=1, duration=5, resolution="480P", width=832, height=480, fps=30)

    async def go():
        async with make(emu.base_url) as backend:
            await backend.submit(bad, {})

    err = expect(BackendError, go())
    assert type(err) is BackendError and err.code == "InvalidParameter" and not err.retryable
    assert "parameters.size '832*480' is not supported by model wan2.6-t2v" in str(err)
    assert err.status == 400 and err.request_id


@pytest.mark.parametrize("fault, code, retryable", [
    ("inspection_fail", "DataInspectionFailed", False), ("fail_tasks", "InternalError", True)])
def test_failed_task_raises_provider_code_and_message(emu, fault, code, retryable):
    setattr(emu.faults, fault, 1)

    async def go():
        async with make(emu.base_url) as backend:
            sub = await backend.submit(T2V, {})
            await backend.wait(sub.remote_id, T2V)

    err = expect(TaskFailed, go())
    assert err.code == code and err.retryable is retryable
    assert err.provider_message == emu.tasks()[next(iter(emu.tasks()))]["message"]


def test_5xx_after_create_is_uncertain_and_never_resubmitted(emu):
    emu.faults.submit_5xx_after_create = 1

    async def go():
        async with make(emu.base_url) as backend:
            await backend.submit(T2V, {})

    err = expect(SubmitUncertain, go())
    assert not err.retryable and err.status == 500 and err.code == "InternalError"
    assert "--resubmit-uncertain" in str(err) and "GET /tasks" in str(err)
    assert len(emu.tasks()) == 1 and len(submits(emu)) == 1


def test_reset_or_timeout_after_sending_is_uncertain_and_never_resubmitted(emu):
    emu.faults.submit_reset = 1

    async def reset():
        async with make(emu.base_url) as backend:
            await backend.submit(T2V, {})

    err = expect(SubmitUncertain, reset())
    assert "connection failed after the request was sent" in str(err)
    assert len(submits(emu)) == 1
    assert len(emu.tasks()) == 0  # this emulator fault drops the connection before creating

    # A reply slower than the client's timeout: the server creates the task after we gave up.
    emu.faults.slow_ms = 700

    async def slow():
        async with make(emu.base_url, timeout=0.3) as backend:
            await backend.submit(T2V, {})

    err = expect(SubmitUncertain, slow())
    assert "no answer within the timeout" in str(err)
    emu.faults.slow_ms = 0
    time.sleep(0.8)
    assert len(submits(emu)) == 2 and len(emu.tasks()) == 1


def test_connect_failure_is_retryable_not_uncertain():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens

    async def go():
        async with make(f"http://127.0.0.1:{port}/api/v1") as backend:
            await backend.submit(T2V, {})

    err = expect(BackendError, go())
    assert not isinstance(err, SubmitUncertain) and err.retryable and err.code == "ConnectError"


@pytest.mark.parametrize("status, code, kind, retryable", [
    (503, "ModelUnavailable", BackendError, True),
    (502, "BadGateway", SubmitUncertain, False),
    (504, "GatewayTimeout", SubmitUncertain, False),
    (429, "Throttling.AllocationQuota", BackendError, False),
    (403, "AccessDenied.Unpurchased", BackendError, False),
])
def test_submit_status_mapping(status, code, kind, retryable):
    def handler(request):
        return httpx.Response(status, json={"request_id": "rid-1", "code": code, "message": "m"},
                              headers={"retry-after-ms": "1500"})

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(handler))
    err = expect(kind, backend.submit(T2V, {}))
    assert type(err) is kind and err.code == code and err.retryable is retryable
    assert err.request_id == "rid-1" and err.status == status and err.retry_after == 1.5


def test_provider_text_echoing_the_key_is_scrubbed():
    def handler(request):
        return httpx.Response(401, json={"code": "InvalidApiKey",
                                         "message": f"Invalid API-key provided: {KEY}"})

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(handler))
    err = expect(AuthError, backend.submit(T2V, {}))
    assert "<api-key>" in str(err)


# ---------------------------------------------------------------- download

def finish_one(emu, tmp_path, **kw):
    async def go():
        async with make(emu.base_url, **kw) as backend:
            sub = await backend.submit(T2V, {})
            done = await backend.wait(sub.remote_id, T2V)
            dest = str(tmp_path / "out" / "clip.mp4")
            try:
                return done, dest, await backend.download(done, dest)
            except BaseException as exc:
                return done, dest, exc

    return run(go())


def leftovers(dest):
    d = os.path.dirname(dest)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_download_streams_and_hashes(emu, tmp_path):
    done, dest, digest = finish_one(emu, tmp_path)
    data = open(dest, "rb").read()
    assert digest == hashlib.sha256(data).hexdigest() and len(data) > 1000
    assert data[4:8] == b"ftyp"
    assert leftovers(dest) == ["clip.mp4"]
    dl = [r for r in emu.requests() if r["path"].startswith("/videos/")]
    assert "Authorization" not in dl[0]["headers"]  # signed URL: our key stays home


def test_truncated_download_resumes_with_range_to_the_exact_file(emu, tmp_path):
    emu.faults.truncated_downloads = 2
    emu.faults.download_reset = 0
    done, dest, digest = finish_one(emu, tmp_path)
    assert isinstance(digest, str), digest
    data = open(dest, "rb").read()
    assert digest == hashlib.sha256(data).hexdigest()
    dl = [r for r in emu.requests() if r["path"].startswith("/videos/")]
    assert len(dl) == 3
    assert "Range" not in dl[0]["headers"]
    have = [int(re.fullmatch(r"bytes=(\d+)-", r["headers"]["Range"]).group(1)) for r in dl[1:]]
    assert 0 < have[0] < have[1] < len(data)
    # The same video again, in one piece, is byte-identical.
    emu.faults.truncated_downloads = 0

    async def again():
        async with make(emu.base_url) as backend:
            return await backend.download(done, str(tmp_path / "again.mp4"))

    assert run(again()) == digest
    assert leftovers(dest) == ["clip.mp4"]


def test_download_reset_is_retried(emu, tmp_path):
    emu.faults.download_reset = 1
    done, dest, digest = finish_one(emu, tmp_path)
    assert digest == hashlib.sha256(open(dest, "rb").read()).hexdigest()


def test_download_gives_up_after_attempts_leaving_nothing(emu, tmp_path):
    emu.faults.truncated_downloads = 10
    done, dest, err = finish_one(emu, tmp_path, download_attempts=3)
    assert isinstance(err, DownloadError) and err.retryable and err.code == "DownloadFailed"
    assert "3 attempts" in str(err) and "retry the download" in str(err)
    no_secret(err)
    assert leftovers(dest) == []


def test_expired_url_is_url_expired_and_leaves_nothing(tmp_path):
    with Emulator(api_keys=(KEY,), latency=(0.2, 0.3), url_ttl=0.5, render_scale=0.25) as emu:
        async def go():
            async with make(emu.base_url) as backend:
                sub = await backend.submit(T2V, {})
                done = await backend.wait(sub.remote_id, T2V)
                await asyncio.sleep(1.6)  # Expires is whole seconds
                await backend.download(done, str(tmp_path / "out" / "clip.mp4"))

        err = expect(DownloadError, go())
        dl = [r for r in emu.requests() if r["path"].startswith("/videos/")]
        assert [r["status"] for r in dl] == [403]  # answered "Request has expired.": no retry
    assert err.code == "URLExpired" and not err.retryable
    assert "expired" in str(err) and "24 h" in str(err) and "generating it again" in str(err)
    assert "Signature" not in str(err)
    assert leftovers(str(tmp_path / "out" / "clip.mp4")) == []


def test_long_expired_url_fails_without_a_request(emu, tmp_path):
    emu.faults.expired_urls = 1
    done, dest, err = finish_one(emu, tmp_path)
    assert isinstance(err, DownloadError) and err.code == "URLExpired"
    no_secret(err)
    assert not [r for r in emu.requests() if r["path"].startswith("/videos/")]
    assert leftovers(dest) == []


def test_server_ignoring_range_restarts_and_short_body_is_never_success(tmp_path):
    payload = os.urandom(5000)
    calls = []

    def handler(request):
        calls.append(request.headers.get("range"))
        if len(calls) == 1:  # announces 5000 bytes, delivers 2000
            return httpx.Response(200, content=payload[:2000],
                                  headers={"Content-Length": "5000", "Accept-Ranges": "bytes"})
        return httpx.Response(200, content=payload)  # ignores Range: whole file again

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(handler))
    done = Finished("t", None, "https://oss.example/v.mp4?Expires=9999999999", None, None, 5.0)
    digest = run(backend.download(done, str(tmp_path / "v.mp4")))
    assert calls == [None, "bytes=2000-"]
    assert (tmp_path / "v.mp4").read_bytes() == payload
    assert digest == hashlib.sha256(payload).hexdigest()

    def always_short(request):
        return httpx.Response(200, content=payload[:10], headers={"Content-Length": "5000"})

    backend = make("https://x.example/api/v1", transport=httpx.MockTransport(always_short),
                   download_attempts=2)
    err = expect(DownloadError, backend.download(done, str(tmp_path / "w.mp4")))
    assert "10 of 5000" in str(err)
    assert sorted(os.listdir(tmp_path)) == ["v.mp4"]


# ---------------------------------------------------------------- configuration, secrets

def test_regions_base_urls_and_identity():
    b = DashScopeBackend(api_key=KEY)
    assert b.base_url == models.REGIONS["beijing"] and b.identity == "dashscope" and b.supports_upload
    b = DashScopeBackend(api_key=KEY, region="ap-southeast-1")
    assert b.base_url == models.REGIONS["singapore"] and not b.supports_upload
    b = DashScopeBackend(api_key=KEY, base_url="http://127.0.0.1:9/")
    assert b.base_url == "http://127.0.0.1:9/api/v1" and b.identity == "dashscope:custom"
    assert b.supports_upload
    b = DashScopeBackend(api_key=KEY, base_url=models.REGIONS["virginia"] + "/")
    assert b.identity == "dashscope" and b.region == "virginia"
    # Default first poll: near the expected generation time, longer for longer/larger clips.
    from wanflow.backends.dashscope import default_poll_first
    short = default_poll_first(build(shot("wan2.2-t2v-plus", size="832*480"), 1, {}, {}))
    long = default_poll_first(build(shot("wan2.7-t2v", resolution="1080P", duration=15), 1, {}, {}))
    assert 5 <= short < long <= 120
    for bad in (dict(region="mars"), dict(base_url="ftp://x"), dict(api_key=""),
                dict(query_qps=0)):
        kw = {"api_key": KEY, **bad}
        with pytest.raises(ConfigError) as info:
            DashScopeBackend(**kw)
        no_secret(info.value)


def test_the_key_never_shows_in_repr_pickle_or_any_error_seen():
    backend = DashScopeBackend(api_key=KEY, region="beijing")
    assert KEY not in repr(backend) and "hidden" in repr(backend)
    assert KEY not in repr(vars(backend))
    with pytest.raises(TypeError):
        pickle.dumps(backend._key)
    # Every error the tests above provoked went through `no_secret`.
    assert all(KEY not in str(e) for e in SEEN_ERRORS)
