"""Polling efficiency: task queries per generation and detection delay, wanflow vs the SDK.

N generations (wan2.7-t2v, 720P, 5 s) whose durations are known from the emulator (drawn
from --latency, identical for both clients: two emulators with the same seed, tasks
submitted in the same order) are awaited by
  wanflow  DashScopeBackend.wait: first poll at ¾ of the expected time (here 37.5 s), then
           every 20 % of the time since submit, up to poll_max = 30 s, ±10 % jitter,
           paced under 20 QPS
  SDK      the official dashscope SDK 1.x-style VideoSynthesis.wait: sleeps 1,1,2,2,2,4,4,4,
           5,5,5… s between queries (one thread per task, as a script would do)
Both run at the same time against their own emulator. Times are divided by --time-scale
for the run and reported unscaled (simulated seconds). The emulators do not throttle
queries here, so each client's per-task figures are its own; the peak query rate it put
on the account is reported against the 20 QPS limit.

For each task: queries (GET /tasks/{id}) and detection delay = the moment wait() returned
minus the task's end_time. Goal: ≥ 4× fewer queries than the SDK, with detection delay
within 10 % of the task's duration.

    python bench/bench_polling.py [--tasks 40] [--latency 60:300] [--time-scale 8]
        [--poll-max 30] [--poll-first S]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import re
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wanflow.backends.emulator import Emulator  # noqa: E402

KEY = "sk-test"
MODEL = "wan2.7-t2v"
DURATION = 5
POLL_RE = re.compile(r"/api/v1/tasks/([^/]+)")


def emulator(cfg) -> Emulator:
    return Emulator(latency=cfg.latency, time_scale=cfg.time_scale, concurrency=10 ** 6,
                    submit_rps=10 ** 6, query_qps=10 ** 9, render_scale=0.25,
                    seed=cfg.seed).start()


def request(i: int):
    from wanflow.plan.request import GenRequest

    body = {"model": MODEL, "input": {"prompt": f"Polling bench task {i}: a kite over dunes."},
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": DURATION,
                           "prompt_extend": False, "watermark": False}}
    return GenRequest(model=MODEL, endpoint="services/aigc/video-generation/video-synthesis",
                      body=body, blobs=(), take=1, duration=DURATION, resolution="720P",
                      width=1280, height=720, fps=30, label=f"bench.t{i}")


# --------------------------------------------------------------------------- clients

async def _wanflow(cfg, emu: Emulator, seen: dict) -> None:
    from wanflow.backends.dashscope import DashScopeBackend, default_poll_first

    ts = cfg.time_scale
    first = cfg.poll_first if cfg.poll_first is not None else default_poll_first(request(0))
    backend = DashScopeBackend(api_key=KEY, base_url=emu.base_url, poll_first=first / ts,
                               poll_max=cfg.poll_max / ts, query_qps=20.0 * ts)
    async with backend:
        ids = []
        for i in range(cfg.tasks):   # submitted in order: the same durations as the SDK's
            ids.append((await backend.submit(request(i), {})).remote_id)

        async def wait(i, remote_id):
            await backend.wait(remote_id, request(i))
            seen[remote_id] = time.time()

        await asyncio.gather(*(wait(i, r) for i, r in enumerate(ids)))
    return first


def _sdk(cfg, emu: Emulator, seen: dict, errors: list) -> None:
    import dashscope
    from dashscope import VideoSynthesis

    tasks = []
    for i in range(cfg.tasks):
        body = request(i).body
        rsp = VideoSynthesis.async_call(model=MODEL, prompt=body["input"]["prompt"], api_key=KEY,
                                        **body["parameters"])
        if rsp.status_code != 200:
            raise RuntimeError(f"SDK submit failed: {rsp}")
        tasks.append(rsp)

    def wait(task):
        rsp = VideoSynthesis.wait(task, api_key=KEY)
        seen[task.output.task_id] = time.time()
        if rsp.status_code != 200 or rsp.output.task_status != "SUCCEEDED":
            errors.append(str(rsp))

    threads = [threading.Thread(target=wait, args=(t,)) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    del dashscope


# --------------------------------------------------------------------------- analysis

def analyse(emu: Emulator, seen: dict, ts: float) -> dict:
    tasks = emu.tasks()
    polls = collections.Counter()
    times = []
    for r in emu.requests():
        m = POLL_RE.fullmatch(r["path"])
        if r["method"] == "GET" and m:
            polls[m.group(1)] += 1
            times.append(r["time"])
    rows = []
    for tid, t in tasks.items():
        duration = (t["end_time"] - t["submit_time"]) * ts
        delay = (seen[tid] - t["end_time"]) * ts
        rows.append({"duration": duration, "delay": delay, "polls": polls[tid]})
    times.sort()
    peak, j = 0, 0
    for i, t in enumerate(times):   # most queries in any 1 simulated second
        while times[j] < t - 1.0 / ts:
            j += 1
        peak = max(peak, i - j + 1)
    return {"rows": rows, "peak_qps": peak}


def summary(rows: list) -> dict:
    n = len(rows)
    delays = sorted(r["delay"] for r in rows)
    rel = sorted(r["delay"] / r["duration"] for r in rows)
    return {"n": n, "polls": sum(r["polls"] for r in rows) / n,
            "polls_min": min(r["polls"] for r in rows), "polls_max": max(r["polls"] for r in rows),
            "total": sum(r["polls"] for r in rows),
            "delay": sum(delays) / n, "delay_p95": delays[int(0.95 * (n - 1))],
            "delay_max": delays[-1], "rel": sum(rel) / n, "rel_max": rel[-1],
            "within": sum(x <= 0.10 for x in rel)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--latency", default="60:300", help="simulated s per generation, MIN:MAX")
    ap.add_argument("--time-scale", type=float, default=8.0)
    ap.add_argument("--poll-first", type=float, default=None,
                    help="wanflow first poll, simulated s (default: wanflow's own)")
    ap.add_argument("--poll-max", type=float, default=30.0, help="wanflow poll cap, simulated s")
    ap.add_argument("--seed", type=int, default=3)
    cfg = ap.parse_args(argv)
    lo, _, hi = cfg.latency.partition(":")
    cfg.latency = (float(lo), float(hi or lo))
    ts = cfg.time_scale

    from dashscope.client import base_api
    import dashscope

    real_time = base_api.time

    class ScaledTime:   # the SDK's wait() schedule on the simulated clock
        time = staticmethod(real_time.time)

        @staticmethod
        def sleep(seconds):
            real_time.sleep(seconds / ts)

    print(f"{cfg.tasks} tasks per client, durations {cfg.latency[0]:g}-{cfg.latency[1]:g} s, "
          f"time scale {ts:g}", flush=True)
    emu_w, emu_s = emulator(cfg), emulator(cfg)
    seen_w, seen_s, errors = {}, {}, []
    base_api.time = ScaledTime
    dashscope.base_http_api_url = emu_s.base_url
    started = time.monotonic()
    try:
        sdk = threading.Thread(target=_sdk, args=(cfg, emu_s, seen_s, errors))
        sdk.start()
        first = asyncio.run(_wanflow(cfg, emu_w, seen_w))
        sdk.join()
        if errors:
            raise RuntimeError(f"SDK waits failed: {errors[:2]}")
        w, s = analyse(emu_w, seen_w, ts), analyse(emu_s, seen_s, ts)
    finally:
        base_api.time = real_time
        emu_w.stop()
        emu_s.stop()
    print(f"  ran in {time.monotonic() - started:.1f} s real\n")
    sw, ss = summary(w["rows"]), summary(s["rows"])
    head = (f"{'client':<26} {'queries/task':>12} {'min-max':>8} {'total':>6} "
            f"{'delay mean/p95/max s':>21} {'delay/dur mean/max':>19} {'<=10 %':>7} "
            f"{'peak QPS':>8}")
    print(head)
    print("-" * len(head))
    for label, x, peak in ((f"wanflow (first {first:g}, max {cfg.poll_max:g})", sw,
                            w["peak_qps"]), ("SDK VideoSynthesis.wait", ss, s["peak_qps"])):
        print(f"{label:<26} {x['polls']:>12.1f} {x['polls_min']:>3}-{x['polls_max']:<4} "
              f"{x['total']:>6} {x['delay']:>7.1f} /{x['delay_p95']:>5.1f} /{x['delay_max']:>5.1f} "
              f"{100 * x['rel']:>8.1f} % /{100 * x['rel_max']:>5.1f} % "
              f"{x['within']:>3}/{x['n']:<3} {peak:>8}")
    print("\nby task duration (simulated s): queries/task and mean delay, wanflow | SDK")
    edges = [cfg.latency[0] + k * (cfg.latency[1] - cfg.latency[0]) / 4 for k in range(5)]
    for a, b in zip(edges, edges[1:]):
        def pick(rows):
            return [r for r in rows if a <= r["duration"] < b or (b == edges[-1] and
                                                                   r["duration"] == b)]
        rw, rs = pick(w["rows"]), pick(s["rows"])
        if rw and rs:
            def mean(rows, key):
                return sum(r[key] for r in rows) / len(rows)

            print(f"  {a:>5.0f}-{b:<5.0f} n={len(rw):<3} wanflow {mean(rw, 'polls'):5.1f} q, "
                  f"{mean(rw, 'delay'):5.1f} s | SDK {mean(rs, 'polls'):5.1f} q, "
                  f"{mean(rs, 'delay'):5.1f} s")
    fewer = ss["polls"] / sw["polls"]
    print(f"\nwanflow uses {fewer:.1f}x fewer queries than the SDK (goal >= 4x: "
          f"{'MET' if fewer >= 4 else 'MISSED'}); mean detection delay {100 * sw['rel']:.1f} % "
          f"of the task's duration, {sw['within']}/{sw['n']} tasks within 10 % (goal: within "
          f"10 %: {'MET' if sw['rel'] <= 0.10 else 'MISSED'} on average, "
          f"{'MET' if sw['within'] == sw['n'] else 'MISSED'} for every task)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
