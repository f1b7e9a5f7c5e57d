"""DashScopeBackend: request bodies and headers on the wire, regions and base URLs, cancel
and list, and the key kept out of every repr and error."""
from __future__ import annotations

import pickle

import httpx
import pytest
from dashscope_support import (
    KEY,
    SEEN_ERRORS,
    T2V,
    api_calls,
    emulator,
    expect,
    make,
    no_secret,
    run,
    shot,
    submits,
)

from wanflow import models
from wanflow.backends.dashscope import DashScopeBackend, default_poll_first
from wanflow.backends.emulator import Emulator
from wanflow.errors import ConfigError, TaskFailed
from wanflow.plan.request import Blob, build, substitute
from wanflow.spec.nodes import Input


@pytest.fixture
def emu():
    with emulator() as e:
        yield e


# ---------------------------------------------------------------- bodies and headers

URL_A = "https://assets.example.com/hero.png"
URL_B = "https://assets.example.com/end.png"
URL_V = "https://assets.example.com/ref.mp4"
URL_S = "https://assets.example.com/voice.mp3"
BLOBS = {"asset:a": Blob("a" * 64, "image/png", URL_A),
         "asset:b": Blob("b" * 64, "image/png", URL_B),
         "asset:v": Blob("c" * 64, "video/mp4", URL_V),
         "asset:s": Blob("d" * 64, "audio/mpeg", URL_S)}
FAMILIES = {
    "wan2.7-t2v": shot("wan2.7-t2v", resolution="720P", ratio="9:16", duration=8),
    "wan2.6-t2v": shot("wan2.6-t2v", size="1280*720", shot_type="multi", duration=10,
                       prompt_extend=True, seed=42, negative_prompt="blurry"),
    "wan2.2-t2v-plus": shot("wan2.2-t2v-plus", size="832*480", prompt_extend=False),
    "wan2.6-i2v-flash": shot("wan2.6-i2v-flash", resolution="720P", generate_audio=False,
                             inputs=(Input("first_frame", asset="a"),)),
    "wan2.2-kf2v-flash": shot("wan2.2-kf2v-flash", resolution="480P",
                              inputs=(Input("first_frame", asset="a"),
                                      Input("last_frame", asset="b"))),
    "wan2.6-r2v": shot("wan2.6-r2v", size="1920*1080", shot_type="multi",
                       prompt="character1 waves at character2",
                       inputs=(Input("reference_video", asset="v"),
                               Input("reference_image", asset="a"))),
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
    for model, family in FAMILIES.items():
        bodies[model] = substitute(build(family, 1, BLOBS, {}).body,
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


# ---------------------------------------------------------------- configuration, secrets

def test_regions_base_urls_and_identity():
    b = DashScopeBackend(api_key=KEY)
    assert b.base_url == models.REGIONS["beijing"].classic_url and b.identity == "dashscope"
    assert b.supports_upload
    b = DashScopeBackend(api_key=KEY, region="ap-southeast-1")
    assert b.base_url == models.REGIONS["singapore"].classic_url and not b.supports_upload
    b = DashScopeBackend(api_key=KEY, base_url="http://127.0.0.1:9/")
    assert b.base_url == "http://127.0.0.1:9/api/v1" and b.identity == "dashscope:custom"
    assert b.supports_upload
    b = DashScopeBackend(api_key=KEY, base_url=models.REGIONS["virginia"].classic_url + "/")
    assert b.identity == "dashscope" and b.region == "virginia"
    # Default first poll: near the expected generation time, longer for longer/larger clips.
    short = default_poll_first(build(shot("wan2.2-t2v-plus", size="832*480"), 1, {}, {}))
    long = default_poll_first(build(shot("wan2.7-t2v", resolution="1080P", duration=15), 1, {}, {}))
    assert 5 <= short < long <= 120
    for bad in ({"region": "mars"}, {"base_url": "ftp://x"}, {"api_key": ""},
                {"query_qps": 0}):
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



def test_an_emulators_time_scale_is_honoured_only_from_this_machine():
    scale = {"value": "100"}

    def handler(request):
        headers = {"X-Wanflow-Time-Scale": scale["value"]}
        return httpx.Response(200, json={"request_id": "r", "output": {
            "task_id": "t1", "task_status": "PENDING"}}, headers=headers)

    def submitted(base_url):
        backend = make(base_url, transport=httpx.MockTransport(handler))
        run(backend.submit(T2V, {}))
        return backend

    assert submitted("https://dashscope.example/api/v1").time_scale == 1.0
    assert submitted("http://dashscope.aliyuncs.com.127.0.0.1.nip.io/api/v1").time_scale == 1.0
    for local in ("http://localhost:9/api/v1", "http://127.0.0.2:9/api/v1",
                  "http://[::1]:9/api/v1"):
        assert submitted(local).time_scale == 100.0
    for junk in ("nan", "inf", "0", "-4", "fast", "1e9"):
        scale["value"] = junk
        assert submitted("http://127.0.0.1:9/api/v1").time_scale == 1.0


# ---------------------------------------------------------------- workspace hosts, regions

@pytest.mark.parametrize("region, region_id", [
    ("beijing", "cn-beijing"), ("singapore", "ap-southeast-1"), ("virginia", "us-east-1"),
    ("hongkong", "cn-hongkong"), ("tokyo", "ap-northeast-1"), ("frankfurt", "eu-central-1")])
def test_a_workspace_selects_its_host_in_every_region(region, region_id):
    b = DashScopeBackend(api_key=KEY, region=region, workspace="llm-abc123")
    assert b.base_url == f"https://llm-abc123.{region_id}.maas.aliyuncs.com/api/v1"
    assert b.identity == "dashscope" and b.region == region
    assert b.supports_upload == (region == "beijing")
    # the same host named by hand is recognised as official, with its region
    named = DashScopeBackend(api_key=KEY, base_url=b.base_url)
    assert named.identity == "dashscope" and named.region == region


def test_classic_hosts_and_regions_without_one():
    b = DashScopeBackend(api_key=KEY, region="cn-hongkong")
    assert b.base_url == "https://cn-hongkong.dashscope.aliyuncs.com/api/v1"
    for region in ("tokyo", "frankfurt"):
        with pytest.raises(ConfigError) as info:
            DashScopeBackend(api_key=KEY, region=region)
        assert "--workspace" in str(info.value) and "WANFLOW_WORKSPACE" in str(info.value)
    # a workspace id is one DNS label: it cannot steer the key to another host
    for bad in ("evil.com/x", "a.b", "-x", "x" * 64, "ws@evil", ""):
        with pytest.raises(ConfigError):
            DashScopeBackend(api_key=KEY, workspace=bad or " ")


def test_refusals_before_any_spend():
    """Wan 3.0 on a shared host, and local audio or video where nothing can be uploaded, are
    refused before the run submits anything (session.check_backend asks for every task)."""
    from wanflow.backends.base import Medium

    voice, still = Medium("asset 'voice'", "audio/wav"), Medium("frame:a.x#1:last", "image/png")
    classic = DashScopeBackend(api_key=KEY)
    why = classic.refusal("wan3.0-video", [still])
    assert why and "--workspace" in why and "workspace hosts only" in why
    assert classic.refusal("wan3.0-video-prime-2026-09-01", []) is not None
    assert classic.refusal("wan2.7-t2v", [voice]) is None          # Beijing uploads
    assert DashScopeBackend(api_key=KEY, workspace="ws1").refusal("wan3.0-video", [voice]) is None
    assert DashScopeBackend(api_key=KEY, base_url="http://127.0.0.1:9").refusal(
        "wan3.0-video", []) is None                                 # a host the user named
    intl = DashScopeBackend(api_key=KEY, region="singapore", workspace="ws1")
    assert intl.refusal("wan3.0-video", [still]) is None           # images go inline
    why = intl.refusal("wan3.0-video", [still, voice])
    assert why and "asset 'voice'" in why and "https URL" in why
    assert intl.refusal("wan3.0-video", [Medium("asset 'v'", "audio/wav", "https://e.com/v.wav")]) \
        is None


def test_retry_backoff_comes_from_the_environment():
    from wanflow import backends
    from wanflow.settings import Settings

    choice = backends.select("dashscope", None, True)
    env = {"DASHSCOPE_API_KEY": KEY}
    assert backends.make(choice, Settings.resolve(env)).retry_backoff == 0.5
    quick = Settings.resolve({**env, "WANFLOW_RETRY_BACKOFF": "0.05"})
    assert quick.retry_backoff == 0.05 and backends.make(choice, quick).retry_backoff == 0.05
    with pytest.raises(ConfigError, match="WANFLOW_RETRY_BACKOFF"):
        Settings.resolve({"WANFLOW_RETRY_BACKOFF": "soon"})
