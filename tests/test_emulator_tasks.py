"""The emulator's tasks: usage per model generation, cancel, expiry, the list, determinism."""
from __future__ import annotations

import time

import emulator_helpers
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

make_emu = emulator_helpers.make_emu
client = emulator_helpers.client


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


def test_cancel_pending_and_running(make_emu, client):
    # PENDING 0.3 s, RUNNING 2.7 s
    emu = make_emu(latency=(6.0, 6.0), time_scale=2.0, concurrency=10)
    a = task_id(submit(client, emu, t2v()))
    r = client.post(f"{emu.base_url}/tasks/{a}/cancel", headers=AUTH)
    assert r.status_code == 200 and set(r.json()) == {"request_id"}
    out = poll(client, emu, a)["output"]
    assert out["task_status"] == "CANCELED" and "video_url" not in out
    b = task_id(submit(client, emu, t2v()))
    while (status := poll(client, emu, b)["output"]["task_status"]) == "PENDING":
        time.sleep(0.05)
    assert status == "RUNNING"
    assert_error(client.post(f"{emu.base_url}/tasks/{b}/cancel", headers=AUTH), 400,
                 "UnsupportedOperation", "RUNNING")
    assert_error(client.post(f"{emu.base_url}/tasks/{a}/cancel", headers=AUTH), 400,
                 "UnsupportedOperation")
    wrong_key = {"Authorization": "Bearer x"}
    assert_error(client.post(f"{emu.base_url}/tasks/{b}/cancel", headers=wrong_key), 401,
                 "InvalidApiKey")


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
    only = client.get(emu.base_url + "/tasks", params={"model_name": "wan2.7-t2v"},
                      headers=AUTH).json()
    assert [x["task_id"] for x in only["data"]] == [ids[3]]
    st = client.get(emu.base_url + "/tasks", params={"status": "FAILED"}, headers=AUTH).json()
    assert [x["task_id"] for x in st["data"]] == [failed]
    future = client.get(emu.base_url + "/tasks", params={"start_time": "29990101000000"},
                        headers=AUTH).json()
    assert future["total"] == 0 and future["data"] == []
    assert_error(client.get(emu.base_url + "/tasks", params={"start_time": "yesterday"},
                            headers=AUTH), 400, "InvalidParameter", "start_time")


def test_determinism(make_emu, client):
    a = make_emu(seed=7, latency=(1.0, 100.0), time_scale=1000)
    b = make_emu(seed=7, latency=(1.0, 100.0), time_scale=1000)
    ids_a = [task_id(submit(client, a, t2v())) for _ in range(2)]
    ids_b = [task_id(submit(client, b, t2v())) for _ in range(2)]
    assert ids_a == ids_b

    def ends(e):
        return [round(t["end_time"] - t["submit_time"], 6) for t in e.tasks().values()]

    assert ends(a) == ends(b)


def test_latency_spread_gives_each_kind_its_own_mean(make_emu, client):
    emu = make_emu(seed=5, latency=(60.0, 300.0), time_scale=1000, latency_spread=0.2,
                   concurrency=1000, submit_rps=1000)
    kinds = {"720P 2 s": {"resolution": "720P", "ratio": "16:9", "duration": 2},
             "1080P 10 s": {"resolution": "1080P", "ratio": "16:9", "duration": 10}}
    for params in kinds.values():
        for _ in range(12):
            task_id(submit(client, emu, t2v("wan2.7-t2v", **params)))
    by_kind: dict = {}
    for t in emu.tasks().values():
        seconds = (t["end_time"] - t["submit_time"]) * 1000    # simulated seconds
        by_kind.setdefault((t["resolution"], t["duration"]), []).append(seconds)
    means = []
    for runs in by_kind.values():
        mean = sum(runs) / len(runs)
        assert min(runs) >= 60.0 * 0.8 and max(runs) <= 300.0 * 1.2
        assert max(runs) / min(runs) <= 1.2 / 0.8 + 1e-6   # ±20 % around one mean
        assert max(runs) / min(runs) > 1.05                 # ... but they do vary
        means.append(mean)
    assert abs(means[0] - means[1]) > 10.0


def test_every_api_answer_advertises_the_time_scale(make_emu, client):
    emu = make_emu(time_scale=40)
    resp = submit(client, emu, t2v())
    assert resp.headers["X-Wanflow-Time-Scale"] == "40"
    polled = client.get(f"{emu.base_url}/tasks/{task_id(resp)}", headers=AUTH)
    assert polled.headers["X-Wanflow-Time-Scale"] == "40"
