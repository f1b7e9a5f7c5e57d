"""Polling efficiency: task queries per generation and how soon a finished task is noticed,
wanflow without and with history, beside the official SDK's schedule.

The emulator gives run times signal, as the real service has: each kind of task (here
wan2.7-t2v at 720P/1080P, 10 s/15 s) has its own mean run time within --latency, and each
task varies ±--spread around it. N tasks, spread evenly over the kinds, are awaited by

  wanflow, no history   DashScopeBackend.wait with an empty journal: first poll at ¾ of the
                        table's estimate, then every 20 % of the time since submit (≤ 30 s)
  wanflow, learned      the same N tasks again, with the journal the first pass filled (N/4
                        run times per kind, so at least three of every kind): first poll
                        just before the quickest run of the kind, then every 8 % of the age
                        until the slowest would have finished
  SDK                   the official dashscope SDK 1.x-style VideoSynthesis.wait: sleeps
                        1,1,2,2,2,4,4,4,5,5,5… s between queries (one thread per task)

Both wanflow passes run against one emulator (a kind includes the server's URL); the SDK
runs against a second one with the same seed, at the same time as the first pass. Times are
divided by --time-scale for the run (the emulator advertises its scale and wanflow paces to
it) and reported unscaled (simulated seconds). The emulators do not throttle queries here,
so each client's figures are its own; the busiest simulated second of queries each client
put on the account is reported against the 20 QPS limit.

For each task: queries (GET /tasks/{id}) and detection delay = the moment wait() returned
minus the task's end_time, as a share of its run time (submit to end). Goals: ≥ 4× fewer
queries than the SDK, 90 % of tasks noticed within 10 % once three of their kind finished,
and never more than 20 queries in a second.

    python bench/bench_polling.py [--tasks 40] [--latency 60:300] [--spread 0.2]
        [--time-scale 8] [--seed 3]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from wanflow.backends.emulator import Emulator

KEY = "sk-test"
MODEL = "wan2.7-t2v"
KINDS = (("720P", 10), ("1080P", 10), ("720P", 15), ("1080P", 15))
QUERY_LIMIT = 20
POLL_RE = re.compile(r"/api/v1/tasks/([^/]+)")


def emulator(cfg) -> Emulator:
    return Emulator(latency=cfg.latency, latency_spread=cfg.spread, time_scale=cfg.time_scale,
                    concurrency=10 ** 6, submit_rps=10 ** 6, query_qps=10 ** 9,
                    render_scale=0.25, seed=cfg.seed).start()


def request(i: int):
    from wanflow.models import dimensions, size_of
    from wanflow.plan.request import GenRequest

    resolution, duration = KINDS[i % len(KINDS)]
    width, height = dimensions(size_of(resolution, "16:9"))
    body = {"model": MODEL, "input": {"prompt": f"Polling bench task {i}: a kite over dunes."},
            "parameters": {"resolution": resolution, "ratio": "16:9", "duration": duration,
                           "prompt_extend": False, "watermark": False}}
    return GenRequest(model=MODEL, endpoint="services/aigc/video-generation/video-synthesis",
                      body=body, blobs=(), take=1, duration=duration, resolution=resolution,
                      width=width, height=height, fps=30, label=f"bench.t{i}")


# --------------------------------------------------------------------------- clients

async def _wanflow(cfg, emu: Emulator, journal) -> dict:
    """Submit every task, wait for all at once; remote id -> the moment wait() returned."""
    from wanflow.backends.dashscope import DashScopeBackend

    seen: dict = {}
    # The account's 20 queries/s on the simulated clock: 20 × time scale real queries/s.
    backend = DashScopeBackend(api_key=KEY, base_url=emu.base_url,
                               query_qps=QUERY_LIMIT * cfg.time_scale)
    backend.learn(journal)
    async with backend:
        ids = [(await backend.submit(request(i), {})).remote_id for i in range(cfg.tasks)]

        async def wait(i, remote_id):
            await backend.wait(remote_id, request(i))
            seen[remote_id] = time.time()

        await asyncio.gather(*(wait(i, r) for i, r in enumerate(ids)))
    return seen


def _sdk(cfg, seen: dict, errors: list) -> None:
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


# --------------------------------------------------------------------------- analysis

def analyse(emu: Emulator, seen: dict, ts: float) -> dict:
    """Per task (of those in `seen`): run time, detection delay, queries; and the busiest
    simulated second of queries for those tasks."""
    tasks = emu.tasks()
    polls = collections.Counter()
    times = []
    for r in emu.requests():
        m = POLL_RE.fullmatch(r["path"])
        if r["method"] == "GET" and m and m.group(1) in seen:
            polls[m.group(1)] += 1
            times.append(r["time"])
    rows = []
    for tid, noticed in seen.items():
        t = tasks[tid]
        run = (t["end_time"] - t["submit_time"]) * ts
        rows.append({"kind": (t["resolution"], t["duration"]), "run": run,
                     "delay": (noticed - t["end_time"]) * ts, "polls": polls[tid]})
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
    rel = sorted(r["delay"] / r["run"] for r in rows)
    return {"n": n, "polls": sum(r["polls"] for r in rows) / n,
            "polls_min": min(r["polls"] for r in rows), "polls_max": max(r["polls"] for r in rows),
            "delay": sum(delays) / n, "delay_p95": delays[int(0.95 * (n - 1))],
            "delay_max": delays[-1], "rel": sum(rel) / n, "rel_max": rel[-1],
            "within": sum(x <= 0.10 for x in rel)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--latency", default="60:300",
                    help="simulated s: the kinds' mean run times lie in MIN:MAX")
    ap.add_argument("--spread", type=float, default=0.2,
                    help="each task's run time: its kind's mean ± this share")
    ap.add_argument("--time-scale", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=3)
    cfg = ap.parse_args(argv)
    lo, _, hi = cfg.latency.partition(":")
    cfg.latency = (float(lo), float(hi or lo))
    ts = cfg.time_scale

    import dashscope
    from dashscope.client import base_api

    from wanflow.store.journal import Journal

    real_time = base_api.time

    class ScaledTime:   # the SDK's wait() schedule on the simulated clock
        time = staticmethod(real_time.time)

        @staticmethod
        def sleep(seconds):
            real_time.sleep(seconds / ts)

    print(f"{cfg.tasks} tasks per client over {len(KINDS)} kinds; kind means in "
          f"{cfg.latency[0]:g}-{cfg.latency[1]:g} s, tasks ±{100 * cfg.spread:g} %; "
          f"time scale {ts:g}", flush=True)
    emu_w, emu_s = emulator(cfg), emulator(cfg)
    errors: list = []
    seen_s: dict = {}
    base_api.time = ScaledTime
    dashscope.base_http_api_url = emu_s.base_url
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp, Journal(Path(tmp) / "journal.db") as journal:
            sdk = threading.Thread(target=_sdk, args=(cfg, seen_s, errors))
            sdk.start()
            seen_fresh = asyncio.run(_wanflow(cfg, emu_w, journal))
            seen_learned = asyncio.run(_wanflow(cfg, emu_w, journal))
            sdk.join()
        if errors:
            raise RuntimeError(f"SDK waits failed: {errors[:2]}")
        fresh, learned = analyse(emu_w, seen_fresh, ts), analyse(emu_w, seen_learned, ts)
        sdk_result = analyse(emu_s, seen_s, ts)
    finally:
        base_api.time = real_time
        emu_w.stop()
        emu_s.stop()
    print(f"  ran in {time.monotonic() - started:.1f} s real\n")
    results = (("wanflow, no history", fresh), ("wanflow, learned (>= 3 runs)", learned),
               ("SDK VideoSynthesis.wait", sdk_result))
    head = (f"{'client':<28} {'queries/task':>12} {'min-max':>8} "
            f"{'delay mean/p95/max s':>21} {'delay/run mean/max':>19} {'<=10 %':>7} "
            f"{'peak QPS':>8}")
    print(head)
    print("-" * len(head))
    stats = {}
    for label, result in results:
        x = stats[label] = summary(result["rows"])
        print(f"{label:<28} {x['polls']:>12.1f} {x['polls_min']:>3}-{x['polls_max']:<4} "
              f"{x['delay']:>7.1f} /{x['delay_p95']:>5.1f} /{x['delay_max']:>5.1f} "
              f"{100 * x['rel']:>8.1f} % /{100 * x['rel_max']:>5.1f} % "
              f"{x['within']:>3}/{x['n']:<3} {result['peak_qps']:>8}")
    runs = collections.defaultdict(list)
    for _, result in results:
        for r in result["rows"]:
            runs[r["kind"]].append(r["run"])
    kind_means = {kind: sum(v) / len(v) for kind, v in runs.items()}
    print("\nby kind (mean run time, simulated s): queries/task and tasks noticed within 10 %")
    for kind, mean in sorted(kind_means.items(), key=lambda kv: kv[1]):
        cells = []
        for _, result in results:
            rows = [r for r in result["rows"] if r["kind"] == kind]
            within = sum(r["delay"] / r["run"] <= 0.10 for r in rows)
            cells.append(f"{sum(r['polls'] for r in rows) / len(rows):4.1f} q "
                         f"{within:>2}/{len(rows)}")
        columns = zip(("no history", "learned", "SDK"), cells, strict=True)
        print(f"  {kind[0]:>5} {kind[1]:>2} s  mean {mean:5.0f} s   "
              + " | ".join(f"{name} {cell}" for name, cell in columns))
    x, sdk_stats = stats["wanflow, learned (>= 3 runs)"], stats["SDK VideoSynthesis.wait"]
    fewer = sdk_stats["polls"] / x["polls"]
    share = x["within"] / x["n"]
    peak = max(fresh["peak_qps"], learned["peak_qps"])
    print(f"\nlearned: {fewer:.1f}x fewer queries than the SDK (goal >= 4x: "
          f"{'MET' if fewer >= 4 else 'MISSED'}); {100 * share:.0f} % of tasks noticed within "
          f"10 % of their run time (goal >= 90 %: {'MET' if share >= 0.9 else 'MISSED'}); "
          f"busiest second {peak} queries (limit {QUERY_LIMIT}: "
          f"{'held' if peak <= QUERY_LIMIT else 'EXCEEDED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
