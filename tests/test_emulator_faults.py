"""The emulator's injected faults, and the parsing of its command-line options."""
from __future__ import annotations

import time

import emulator_helpers
import httpx
import pytest
from emulator_helpers import (
    AUTH,
    assert_error,
    poll,
    submit,
    t2v,
    task_id,
    wait,
)

from wanflow.backends.emulator import (
    Emulator,
    Faults,
    options_from_cli,
    parse_faults,
    parse_latency,
)

make_emu = emulator_helpers.make_emu
client = emulator_helpers.client


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


def test_cli_option_parsing():
    assert parse_latency("1:3") == (1.0, 3.0) and parse_latency("2") == (2.0, 2.0)
    with pytest.raises(ValueError):
        parse_latency("3:1")
    f = parse_faults(["submit_429=2", "fail_prompts=nsfw", "fail_prompts=gore|blood",
                      "retry_after=1.5"])
    assert f.submit_429 == 2 and f.fail_prompts == ("nsfw", "gore", "blood")
    assert f.retry_after == 1.5
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
