"""Makespan of a 200-shot spec with continuity chains, against a lower bound and two baselines.

The spec: SCENES scenes of SHOTS shots; shot 1 of a scene is wan2.7-t2v, shots 2.. are
wan2.7-i2v whose first frame is the previous shot's last frame (one chain per scene).

Everything runs against the wanflow emulator (in a child process, like a remote server) with
a realistic generation latency (default 60–240 s) divided by --time-scale, and the
provider's quotas scaled the same way: per model --concurrency tasks in flight and
--submit-rps submissions per simulated second, 20 task queries per simulated second.
Times are reported in *simulated* seconds (real seconds × time scale): what the run would
take against the real service with the same latencies. Real-time costs that do not scale
(HTTP round trips to the emulator, fsyncs, frame extraction) are multiplied by the time
scale too, so a high --time-scale overstates them; the per-model breakdown shows them.

  bound    max(critical path, per model: earliest possible start + work ÷ concurrency,
           all work ÷ min(jobs, Σ concurrency)), from the emulator's actual per-task
           durations (submit → end) in that client's own run
  wanflow  engine.run in-process, dashscope backend, wanflow's own polling policy scaled to
           the time scale (its default first poll and poll_max, read from wanflow, unless
           --poll-first / --poll-max; 20 QPS); per-model limits = the quotas
  sdk      the official `dashscope` SDK as its docs show it: VideoSynthesis.call(...) per
           shot in sequence (its own 1,1,2,2,2,4,4,4,5… s polling, scaled); the SDK uploads
           each local first frame itself. Run on --sdk-scenes scenes, then extrapolated
           linearly (it is sequential) — labelled as such
  naive    plain httpx, asyncio.gather over every scene at once, no client-side limits:
           submit, on 429 (or a refused connection) retry after 1 s, poll every 1 s;
           first frames sent inline as data URIs

Scene and film assembly (local re-encodes at 1280×720 that would dominate a 200-shot run
on two cores and are not part of the bound) is replaced by a copy of the first clip unless
--assembly real. Downloads, probes, frame extraction, uploads and the store are real.

    python bench/bench_makespan.py [--scenes 40] [--shots 5] [--time-scale 100]
        [--latency 60:240] [--concurrency 5] [--submit-rps 2] [--sdk-scenes 1]
        [--jobs N] [--poll-first S] [--poll-max S] [--skip sdk,naive] [--assembly real]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from child_emulator import ChildEmulator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "sk-test"
T2V, I2V = "wan2.7-t2v", "wan2.7-i2v"
DURATION = 5
DEFAULT_JOBS = 16            # wanflow RunOptions.jobs
PROMPT_RE = re.compile(r"Scene (\d+), shot (\d+):")
POLL_RE = re.compile(r"/api/v1/tasks/([^/]+)")

class RemoteEmulator(ChildEmulator):
    """The emulator in a child process, with the bench's account quotas scaled to its clock."""

    def __init__(self, cfg):
        ts = cfg.time_scale
        super().__init__(latency=list(cfg.latency), time_scale=ts,
                         concurrency=cfg.concurrency, submit_rps=cfg.submit_rps * ts,
                         query_qps=20.0 * ts, render_scale=0.25, seed=cfg.seed)

    def snapshot(self) -> tuple[dict, list]:
        return self.control("tasks"), self.control("requests")


# --------------------------------------------------------------------------- analysis

def shot_of(task: dict) -> tuple[int, int] | None:
    m = PROMPT_RE.search((task.get("body") or {}).get("input", {}).get("prompt") or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def model_of(shot: tuple[int, int]) -> str:
    return T2V if shot[1] == 0 else I2V


def bound(tasks: dict, cfg, jobs: int) -> dict:
    """A lower bound on the makespan from the tasks' actual durations (simulated s)."""
    dur: dict[tuple[int, int], float] = collections.defaultdict(float)
    for t in tasks.values():
        shot = shot_of(t)
        if shot is not None:   # every task of a shot held a slot, failed ones too
            dur[shot] += (t["end_time"] - t["submit_time"]) * cfg.time_scale
    earliest, chains = {}, []
    for s in sorted({s for s, _ in dur}):
        acc = 0.0
        for i in range(cfg.shots):
            earliest[(s, i)] = acc
            acc += dur.get((s, i), 0.0)
        chains.append(acc)
    per_model = {}
    for model in (T2V, I2V):
        keys = [k for k in dur if model_of(k) == model]
        if keys:
            per_model[model] = (min(earliest[k] for k in keys)
                                + sum(dur[k] for k in keys) / cfg.concurrency)
    slots = min(jobs, 2 * cfg.concurrency)
    parts = {"critical path": max(chains, default=0.0), **per_model,
             f"all work/{slots}": sum(dur.values()) / slots}
    return {"value": max(parts.values()), "parts": parts, "shots": len(dur)}


def analyse(tasks: dict, reqs: list, w0: float, w1: float, cfg, jobs: int) -> dict:
    """Traffic, detection delays and, per model, where the slot time went."""
    ts = cfg.time_scale
    submits = [r for r in reqs if r["method"] == "POST" and "/services/" in r["path"]]
    polls = [r for r in reqs if r["method"] == "GET" and POLL_RE.fullmatch(r["path"])]
    seen: dict[str, float] = {}
    for r in polls:
        tid = POLL_RE.fullmatch(r["path"]).group(1)
        t = tasks.get(tid)
        if r["status"] == 200 and t and tid not in seen and r["time"] >= t["end_time"]:
            seen[tid] = r["time"]
    delays = sorted((seen[k] - tasks[k]["end_time"]) * ts for k in seen)
    models = {}
    for model in (T2V, I2V):
        mine = {k: t for k, t in tasks.items() if t["model"] == model}
        if not mine:
            continue
        starts = sorted(t["submit_time"] for t in mine.values())
        frees = sorted(seen.get(k, t["end_time"]) for k, t in mine.items())
        c = cfg.concurrency
        busy = sum(t["end_time"] - t["submit_time"] for t in mine.values())
        # A slot is idle: before its first submit; between a task's end and the poll that
        # noticed it; between that and the next submit; after its last task.
        head = sum(s - w0 for s in starts[:c])
        detect = sum(seen.get(k, t["end_time"]) - t["end_time"] for k, t in mine.items())
        gaps = [max(0.0, starts[k] - frees[k - c]) for k in range(c, len(starts))]
        tail = sum(w1 - f for f in frees[-c:])
        models[model] = {"first_submit": (starts[0] - w0) * ts,
                         "busy": busy / (c * (w1 - w0)),
                         "idle": {"before first submits": head * ts, "detection": detect * ts,
                                  "release->next submit": sum(gaps) * ts,
                                  "after last tasks": tail * ts},
                         "gap_ms": 1000 * sum(gaps) / max(1, len(gaps))}
    return {"submits": len(submits), "429": sum(r["status"] == 429 for r in reqs),
            "submit_429": sum(r["status"] == 429 for r in submits),
            "poll_429": sum(r["status"] == 429 for r in polls), "polls": len(polls),
            "tasks": len(tasks),
            "detect_mean": sum(delays) / len(delays) if delays else 0.0,
            "detect_p95": delays[int(0.95 * (len(delays) - 1))] if delays else 0.0,
            "models": models, "bound": bound(tasks, cfg, jobs)}


# --------------------------------------------------------------------------- spec

def prompt(s: int, i: int) -> str:
    return f"Scene {s}, shot {i}: the runner crosses the plain at dusk, take {s * 31 + i}."


def write_spec(root: Path, scenes: int, shots: int) -> Path:
    lines = ["wanflow: 1", "name: bench-makespan",
             ("defaults: {model: wan2.7-t2v, resolution: 720P, ratio: \"16:9\", "
              f"duration: {DURATION}, prompt_extend: false, watermark: false}}"), "scenes:"]
    for s in range(scenes):
        lines += [f"  - id: sc{s}", "    shots:"]
        for i in range(shots):
            if i == 0:
                lines.append(f"      - {{id: s{i}, prompt: \"{prompt(s, i)}\"}}")
            else:
                lines.append(f"      - {{id: s{i}, model: {I2V}, prompt: \"{prompt(s, i)}\", "
                             f"first_frame: {{shot: s{i - 1}, frame: last}}}}")
    lines += ["films:", "  - id: main", "    path: renders/main.mp4",
              "    scenes: [" + ", ".join(f"sc{s}" for s in range(scenes)) + "]"]
    root.mkdir(parents=True, exist_ok=True)
    (root / ".git").mkdir(exist_ok=True)
    spec = root / "bench.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


# --------------------------------------------------------------------------- wanflow

def wanflow_polling(cfg) -> tuple[float, float]:
    """(first poll, poll cap) in simulated s: the options given, else wanflow's defaults for
    one of these shots."""
    from wanflow.backends.dashscope import default_poll_first
    from wanflow.backends.dashscope.client import POLL_MAX
    from wanflow.plan.request import GenRequest

    first, cap = cfg.poll_first, cfg.poll_max
    if first is None:
        body = {"model": T2V, "input": {"prompt": prompt(0, 0)},
                "parameters": {"resolution": "720P", "ratio": "16:9", "duration": DURATION,
                               "prompt_extend": False, "watermark": False}}
        first = default_poll_first(GenRequest(
            model=T2V, endpoint="services/aigc/video-generation/video-synthesis", body=body,
            blobs=(), take=1, duration=DURATION, resolution="720P", width=1280, height=720,
            fps=30))
    if cap is None:
        cap = POLL_MAX
    return float(first), float(cap)


def run_wanflow(cfg, work: Path) -> dict:
    from wanflow import media
    from wanflow.run import session as engine
    from wanflow.settings import Settings

    ts = cfg.time_scale
    spec = write_spec(work / "wanflow", cfg.scenes, cfg.shots)
    poll_first, poll_max = wanflow_polling(cfg)
    os.environ["DASHSCOPE_API_KEY"] = KEY
    real_assemble = media.assemble
    if cfg.assembly == "stub":
        def assemble(clips, dest, **_):
            shutil.copyfile(str(clips[0]), str(dest))
            return media.Assembly(duration=media.probe(dest).duration, reencoded=False)
        media.assemble = assemble
    events = []

    def report(kind, **data):
        events.append((time.time(), kind, data))

    try:
        with RemoteEmulator(cfg) as emu:
            options = {"poll_first": poll_first / ts, "poll_max": poll_max / ts,
                       "query_qps": 20.0 * ts}
            limits = tuple(f"{m}={cfg.concurrency}:{cfg.submit_rps * ts:g}"
                           for m in (T2V, I2V))
            settings = Settings.resolve({"DASHSCOPE_API_KEY": KEY}, backend="dashscope",
                                        base_url=emu.base_url, limits=limits)
            with engine.Session.open(str(spec), settings,
                                     backend_options=options) as session:
                w0 = time.time()
                summary = engine.run(session, reporter=report, jobs=cfg.jobs,
                                     install_signals=False)
                w1 = time.time()
            tasks, reqs = emu.snapshot()
    finally:
        media.assemble = real_assemble
    if summary.failed or summary.skipped or summary.generated != cfg.scenes * cfg.shots:
        raise RuntimeError(f"the wanflow run did not complete: {summary}")
    gen_done = max(t for t, k, d in events if k.value == "finished" and d["task"].kind == "gen")
    out = analyse(tasks, reqs, w0, w1, cfg, cfg.jobs or DEFAULT_JOBS)
    out.update(wall=(w1 - w0) * ts, gen=(gen_done - w0) * ts, poll_first=poll_first,
               poll_max=poll_max)
    return out


# --------------------------------------------------------------------------- official SDK

def run_sdk(cfg, work: Path) -> dict:
    import dashscope
    from dashscope import VideoSynthesis
    from dashscope.client import base_api

    from wanflow import media

    ts = cfg.time_scale
    real_time = base_api.time

    class ScaledTime:   # the SDK's own wait() schedule, on the simulated clock
        time = staticmethod(real_time.time)

        @staticmethod
        def sleep(seconds):
            real_time.sleep(seconds / ts)

    out = work / "sdk"
    out.mkdir()
    scenes = max(1, min(cfg.sdk_scenes, cfg.scenes))
    base_api.time = ScaledTime
    try:
        with RemoteEmulator(cfg) as emu:
            dashscope.base_http_api_url = emu.base_url
            w0 = time.time()
            for s in range(scenes):
                frame = None
                for i in range(cfg.shots):
                    common = {"api_key": KEY, "prompt": prompt(s, i), "resolution": "720P",
                              "duration": DURATION, "prompt_extend": False, "watermark": False}
                    if i == 0:
                        rsp = VideoSynthesis.call(model=T2V, ratio="16:9", **common)
                    else:
                        rsp = VideoSynthesis.call(
                            model=I2V, media=[{"type": "first_frame", "url": f"file://{frame}"}],
                            **common)
                    if rsp.status_code != 200 or rsp.output.task_status != "SUCCEEDED":
                        raise RuntimeError(f"SDK call failed: {rsp}")
                    clip = out / f"sc{s}-s{i}.mp4"
                    clip.write_bytes(httpx.get(rsp.output.video_url, timeout=60).content)
                    frame = out / f"sc{s}-s{i}.png"
                    media.extract_frame(str(clip), str(frame), "last")
            w1 = time.time()
            tasks, reqs = emu.snapshot()
    finally:
        base_api.time = real_time
    res = analyse(tasks, reqs, w0, w1, cfg, 1)
    factor = cfg.scenes / scenes
    res.update(measured=(w1 - w0) * ts, wall=(w1 - w0) * ts * factor, factor=factor,
               shots=scenes * cfg.shots)
    for key in ("submits", "429", "polls", "tasks"):
        res[key] = res[key] * factor
    return res


# --------------------------------------------------------------------------- naive client

async def _naive(cfg, emu: RemoteEmulator, out: Path, errors: list) -> None:
    from wanflow import media

    tick = 1.0 / cfg.time_scale   # "1 s"
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable",
               "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(limits=limits, timeout=300) as client:
        async def request(method, url, **kw):
            while True:   # a refused/reset connection: try again in 1 s, like a 429
                try:
                    return await client.request(method, url, **kw)
                except httpx.TransportError:
                    errors[0] += 1
                    await asyncio.sleep(tick)

        async def generate(body) -> str:
            while True:
                r = await request("POST", f"{emu.base_url}/services/aigc/video-generation/"
                                  "video-synthesis", json=body, headers=headers)
                if r.status_code == 200:
                    task_id = r.json()["output"]["task_id"]
                    break
                if r.status_code != 429:
                    raise RuntimeError(f"naive submit: {r.status_code} {r.text}")
                await asyncio.sleep(tick)
            while True:
                await asyncio.sleep(tick)
                r = await request("GET", f"{emu.base_url}/tasks/{task_id}",
                                  headers={"Authorization": f"Bearer {KEY}"})
                if r.status_code != 200:
                    continue
                output = r.json()["output"]
                if output["task_status"] == "SUCCEEDED":
                    return output["video_url"]
                if output["task_status"] in ("FAILED", "CANCELED", "UNKNOWN"):
                    raise RuntimeError(f"naive task {task_id}: {output}")

        async def scene(s: int) -> None:
            frame_uri = None
            for i in range(cfg.shots):
                params = {"resolution": "720P", "duration": DURATION, "prompt_extend": False,
                          "watermark": False}
                if i == 0:
                    body = {"model": T2V, "input": {"prompt": prompt(s, i)},
                            "parameters": {**params, "ratio": "16:9"}}
                else:
                    body = {"model": I2V, "input": {"prompt": prompt(s, i), "media": [
                        {"type": "first_frame", "url": frame_uri}]}, "parameters": params}
                url = await generate(body)
                clip, frame = out / f"sc{s}-s{i}.mp4", out / f"sc{s}-s{i}.png"
                clip.write_bytes((await request("GET", url)).content)
                await asyncio.to_thread(media.extract_frame, str(clip), str(frame), "last")
                frame_uri = ("data:image/png;base64,"
                             + base64.b64encode(frame.read_bytes()).decode())

        await asyncio.gather(*(scene(s) for s in range(cfg.scenes)))


def run_naive(cfg, work: Path) -> dict:
    out = work / "naive"
    out.mkdir()
    errors = [0]
    with RemoteEmulator(cfg) as emu:
        w0 = time.time()
        asyncio.run(_naive(cfg, emu, out, errors))
        w1 = time.time()
        tasks, reqs = emu.snapshot()
    res = analyse(tasks, reqs, w0, w1, cfg, 10 ** 6)
    res.update(wall=(w1 - w0) * cfg.time_scale, errors=errors[0])
    return res


# --------------------------------------------------------------------------- report

def print_report(cfg, results: dict) -> None:
    ts, total = cfg.time_scale, cfg.scenes * cfg.shots
    ref = (results.get("wanflow") or results.get("naive") or results["sdk"])["bound"]
    head = (f"{'client':<36} {'wall sim s':>10} {'real s':>7} {'bound':>6} {'/bound':>7} "
            f"{'submits':>8} {'429s':>6} {'polls':>6} {'polls/shot':>10} {'detect mean/p95':>16}")
    print(head)
    print("-" * len(head))

    def row(label, r, b):
        print(f"{label:<36} {r['wall']:>10.0f} {r['wall'] / ts:>7.1f} {b:>6.0f} "
              f"{r['wall'] / b:>7.3f} {r['submits']:>8.0f} {r['429']:>6.0f} {r['polls']:>6.0f} "
              f"{r['polls'] / total:>10.1f} {r['detect_mean']:>7.1f} / {r['detect_p95']:<6.1f}")

    print(f"{'lower bound':<36} {ref['value']:>10.0f} {ref['value'] / ts:>7.1f} "
          f"{ref['value']:>6.0f} {1:>7.3f}")
    if "wanflow" in results:
        r = results["wanflow"]
        row("wanflow run", r, r["bound"]["value"])
        print(f"{'  last generation stored at':<36} {r['gen']:>10.0f} {r['gen'] / ts:>7.1f} "
              f"{r['bound']['value']:>6.0f} {r['gen'] / r['bound']['value']:>7.3f}")
    if "sdk" in results:
        r = results["sdk"]
        row(f"SDK call() in sequence, extrap. x{r['factor']:g}", r, ref["value"])
    if "naive" in results:
        r = results["naive"]
        row("naive asyncio.gather", r, r["bound"]["value"])
    print("\nbound = max(" + ", ".join(f"{k} {v:.0f}" for k, v in ref["parts"].items())
          + ") simulated s; every row uses the bound of its own run (the SDK row: the first)")
    if "sdk" in results:
        r = results["sdk"]
        print(f"SDK: measured on {r['shots']} shots ({r['measured']:.0f} sim s); wall time and "
              f"counts extrapolated x{r['factor']:g} to {total} shots.")
    if "naive" in results:
        r = results["naive"]
        print(f"naive: {r['submit_429']} submit 429s, {r['poll_429']} poll 429s, {r['errors']} "
              "refused/reset connections; its 1 s loops ran as fast as the emulator answered, "
              f"so at time scale {ts:g} these counts are a floor.")
    for name in ("wanflow", "naive"):
        if name not in results:
            continue
        print(f"\n{name}: where each model's slot time went (simulated slot-seconds)")
        for model, m in results[name]["models"].items():
            idle = ", ".join(f"{k} {v:.0f}" for k, v in m["idle"].items())
            print(f"  {model:<11} first submit at {m['first_submit']:.0f} s, slots busy "
                  f"{100 * m['busy']:.0f} %; idle: {idle}; release->next submit "
                  f"{m['gap_ms']:.0f} real ms each")
    if "wanflow" in results:
        r = results["wanflow"]
        gap = r["models"].get(I2V, {}).get("gap_ms", 0.0)
        parts = r["bound"]["parts"]
        if max(parts, key=parts.get) == I2V:   # slots are the bottleneck, not the chains
            print(f"\nwanflow, {I2V}: a real-time cost of {gap:.0f} ms between a slot's "
                  f"release and its next submit is {gap * ts / 1000:.1f} simulated s at time "
                  f"scale {ts:g}; a lower --time-scale inflates such costs less")
        ratio = r["wall"] / r["bound"]["value"]
        print(f"\nwanflow / bound = {ratio:.3f}: goal <= 1.10 "
              f"{'MET' if ratio <= 1.10 else 'MISSED'} (poll first {r['poll_first']:g} s, "
              f"max {r['poll_max']:g} s; jobs {cfg.jobs or DEFAULT_JOBS}; time scale {ts:g})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--shots", type=int, default=5, help="shots per scene (one chain)")
    ap.add_argument("--time-scale", type=float, default=100.0)
    ap.add_argument("--latency", default="60:240", help="simulated s per generation, MIN:MAX")
    ap.add_argument("--concurrency", type=int, default=5, help="tasks in flight per model")
    ap.add_argument("--submit-rps", type=float, default=2.0, help="submits/s per model")
    ap.add_argument("--sdk-scenes", type=int, default=1, help="scenes the SDK really runs")
    ap.add_argument("--jobs", type=int, default=None, help="wanflow --jobs (default 16)")
    ap.add_argument("--poll-first", type=float, default=None,
                    help="wanflow first poll, simulated s (default: wanflow's own)")
    ap.add_argument("--poll-max", type=float, default=None,
                    help="wanflow poll interval cap, simulated s (default: wanflow's own)")
    ap.add_argument("--skip", default="", help="comma list of: wanflow, sdk, naive")
    ap.add_argument("--assembly", choices=("stub", "real"), default="stub")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    cfg = ap.parse_args(argv)
    lo, _, hi = cfg.latency.partition(":")
    cfg.latency = (float(lo), float(hi or lo))
    skip = set(filter(None, cfg.skip.split(",")))
    print(f"{cfg.scenes * cfg.shots} shots = {cfg.scenes} scenes x {cfg.shots} (1 {T2V} + "
          f"{cfg.shots - 1} {I2V} chained by last frame); latency {cfg.latency[0]:g}-"
          f"{cfg.latency[1]:g} s; time scale {cfg.time_scale:g}; quotas per model "
          f"{cfg.concurrency} in flight, {cfg.submit_rps:g} submits/s; 20 queries/s; "
          f"assembly {cfg.assembly}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="wanflow-bench-") as tmp:
        for name, fn in (("wanflow", run_wanflow), ("sdk", run_sdk), ("naive", run_naive)):
            if name not in skip:
                started = time.monotonic()
                results[name] = fn(cfg, Path(tmp))
                print(f"  {name}: {time.monotonic() - started:.1f} s real", flush=True)
    if not results:
        return 0
    print()
    print_report(cfg, results)
    if cfg.json:
        print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
