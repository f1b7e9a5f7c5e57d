"""The team's remote tier: pull vs generate, what a claim costs, and a fleet on one account.

Three measurements, each against real parts: the wanflow emulator in a child process (the
provider, with an account's quotas), a remote that is either a moto S3 server on loopback
or a directory (`--remote`, default s3, for pull and claim; `--fleet-remote`, default file,
for the fleet, whose polling a loopback moto server on two cores answers too slowly to be
fair to the runners), and wanflow runners as child processes with caches of their own.

  pull     a 100-shot spec (10 scenes x 10 wan2.7-t2v shots, a film) is generated once
           with the remote; then a fresh runner pulls it (downloads every result, writes
           the renders). Generation is reported in simulated seconds (what the real
           service would take at these latencies), pulling in real seconds.
  claim    the latency a claim adds to one task, measured on the remote alone: settling
           a key nobody holds (look for its result, list its claims, create generation 1)
           plus naming the provider task beside it — one at a time, and 32 at once.
  fleet    200 shots: one runner, then (emulator reset, fresh remote) 4 runners started
           together on the same spec, all against one emulator account. The fleet must
           make exactly 200 submissions, finish within 1.2x the single runner's time, and
           handle the 429s that 4 runners draw from one account by back-off.

Emulator latencies, quotas, polling and submit back-off are divided by --time-scale (like
bench_makespan). Claim intervals are not: scaled, 150 keys waited for by each of 3 runners
would be looked at 100 times as often as in real use, more than a loopback moto server
serves; they are --claim-heartbeat 3 s and --claim-stale 15 s of real time (300 and 1500
simulated s), so a waiting runner can notice a result up to 300 simulated s late. Scene and
film assembly is replaced by a copy of the first clip (a local re-encode, not what is
measured here).

    python bench/bench_remote.py [--remote s3|file] [--fleet-remote file|s3]
        [--time-scale 100] [--latency 60:240] [--concurrency 5] [--submit-rps 2]
        [--pull-shots 100] [--fleet-shots 200] [--runners 4] [--claim-heartbeat 3]
        [--claim-stale 15] [--skip pull,claim,fleet] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from child_emulator import ChildEmulator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "sk-test"
MODEL = "wan2.7-t2v"
DURATION = 5
S3_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
          "AWS_REGION": "us-east-1"}


# One runner: wanflow's session API with the time scale applied to what is not already
# scaled by the emulator (polling, submit back-off, claim intervals) and a stub assembly.
_RUNNER = r"""
import functools, json, shutil, sys, time
a = json.loads(sys.argv[1])
from wanflow import media
from wanflow.run import session as engine
from wanflow.run.options import RunOptions
from wanflow.settings import Settings

def assemble(clips, dest, **_):
    shutil.copyfile(str(clips[0]), str(dest))
    return media.Assembly(duration=media.probe(dest).duration, reencoded=False)

media.assemble = assemble
ts = a["time_scale"]
engine.RunOptions = functools.partial(RunOptions, backoff_base=1.0 / ts,
                                      backoff_cap=60.0 / ts)
settings = Settings.resolve(a["env"], backend="dashscope",
                            base_url=a["base_url"], limits=tuple(a["limits"]),
                            remote=a["remote"], claim_heartbeat=a["heartbeat"],
                            claim_stale=a["stale"])
counts = {"retry": 0, "submitted": 0, "took over": 0}
def report(kind, **data):
    counts[kind.value] = counts.get(kind.value, 0) + 1
    if kind.value == "notice" and "took over" in data["message"]:
        counts["took over"] += 1
options = dict(poll_first=a["poll_first"] / ts, poll_max=a["poll_max"] / ts,
               query_qps=20.0 * ts) if a["generate"] else {}
t0 = time.time()
with engine.Session.open(a["spec"], settings, backend_options=options,
                         generate=a["generate"], fetch=not a["generate"]) as session:
    summary = (engine.run if a["generate"] else engine.pull)(
        session, reporter=report, install_signals=False)
t1 = time.time()
print(json.dumps({"start": t0, "end": t1, "ok": summary.ok, "generated": summary.generated,
                  "downloaded": summary.downloaded, "failed": summary.failed,
                  "failures": summary.failures[:3], "events": counts}))
"""


# --------------------------------------------------------------------------- parts

class Provider(ChildEmulator):
    """The emulator in a child process, with an account's quotas scaled to the bench."""

    def __init__(self, cfg):
        ts = cfg.time_scale
        super().__init__(latency=list(cfg.latency), time_scale=ts,
                         concurrency=cfg.concurrency, submit_rps=cfg.submit_rps * ts,
                         query_qps=20.0 * ts, render_scale=0.25, seed=1)

    def requests(self) -> list[dict]:
        return self.control("requests")

    def submissions(self) -> list[dict]:
        return self.control("submissions")

    def reset(self) -> None:
        self.control("reset", "POST")


class Remotes:
    """Fresh remotes on demand: buckets of one moto S3 server, or directories."""

    def __init__(self, kind: str, work: Path):
        self.kind = kind
        self.work = work
        self.server = None
        if kind == "s3":
            import logging

            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)   # one line per request

            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self.server.start()
            host, port = self.server.get_host_and_port()
            self.endpoint = f"http://{host}:{port}"
            os.environ.update(S3_ENV)

    def fresh(self) -> str:
        name = f"remote-{secrets.token_hex(4)}"
        if self.kind == "file":
            return (self.work / name).as_uri()
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                     aws_access_key_id="bench", aws_secret_access_key="bench"
                     ).create_bucket(Bucket=name)
        return f"s3://{name}/team?endpoint={self.endpoint}"

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def write_spec(root: Path, shots: int, per_scene: int = 10) -> Path:
    defaults = (f"defaults: {{model: {MODEL}, resolution: 720P, ratio: \"16:9\", "
                f"duration: {DURATION}, prompt_extend: false, watermark: false}}")
    lines = ["wanflow: 1", "name: bench-remote", defaults, "scenes:"]
    scenes = []
    for i in range(shots):
        if i % per_scene == 0:
            scenes.append(f"sc{i // per_scene}")
            lines += [f"  - id: {scenes[-1]}", "    shots:"]
        lines.append(f"      - {{id: s{i}, prompt: \"Shot {i}: the ferry leaves at dawn.\"}}")
    lines += ["films:", "  - {id: main, path: renders/main.mp4, scenes: [" +
              ", ".join(scenes) + "]}"]
    root.mkdir(parents=True, exist_ok=True)
    (root / ".git").mkdir(exist_ok=True)
    spec = root / "bench.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def polling() -> tuple[float, float]:
    """wanflow's own first poll and poll cap for these shots (simulated s)."""
    from wanflow.backends.dashscope import default_poll_first
    from wanflow.backends.dashscope.client import POLL_MAX
    from wanflow.plan.request import GenRequest

    body = {"model": MODEL, "input": {"prompt": "x"},
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": DURATION}}
    first = default_poll_first(GenRequest(
        model=MODEL, endpoint="services/aigc/video-generation/video-synthesis", body=body,
        blobs=(), take=1, duration=DURATION, resolution="720P", width=1280, height=720,
        fps=30))
    return float(first), float(POLL_MAX)


def start_runner(cfg, spec: Path, provider: Provider, remote: str, *,
                 generate: bool = True) -> subprocess.Popen:
    first, cap = polling()
    args = {"spec": str(spec), "base_url": provider.base_url, "remote": remote,
            "time_scale": cfg.time_scale, "generate": generate, "poll_first": first,
            "poll_max": cap, "env": {"DASHSCOPE_API_KEY": KEY},
            "heartbeat": cfg.claim_heartbeat, "stale": cfg.claim_stale,
            "limits": [f"{MODEL}={cfg.concurrency}:{cfg.submit_rps * cfg.time_scale:g}"]}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANFLOW_", "DASHSCOPE_"))}
    env.update(PYTHONPATH=str(ROOT), **(S3_ENV if remote.startswith("s3") else {}))
    return subprocess.Popen([sys.executable, "-c", _RUNNER, json.dumps(args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 3600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"a runner failed (exit {proc.returncode}):\n{err[-3000:]}")
    summary = json.loads(lines[-1])
    if not summary["ok"]:
        raise RuntimeError(f"a runner did not finish its spec: {summary}")
    return summary


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- measurements

def bench_pull(cfg, work: Path, remotes: Remotes) -> dict:
    remote = remotes.fresh()
    with_remote = write_spec(work / "pull-maker", cfg.pull_shots)
    fresh = write_spec(work / "pull-fresh", cfg.pull_shots)
    provider = Provider(cfg)
    try:
        made = finish(start_runner(cfg, with_remote, provider, remote))
        submitted = len(provider.submissions())
        t0 = time.monotonic()
        pulled = finish(start_runner(cfg, fresh, provider, remote, generate=False))
        pull_wall = time.monotonic() - t0
        after = len(provider.submissions())
    finally:
        provider.close()
    renders = fresh.parent / "renders" / "main.mp4"
    same = renders.read_bytes() == (with_remote.parent / "renders" / "main.mp4").read_bytes()
    return {"generate_sim": (made["end"] - made["start"]) * cfg.time_scale,
            "generate_wall": made["end"] - made["start"], "submitted": submitted,
            "pull_wall": pull_wall, "pull_run": pulled["end"] - pulled["start"],
            "pulled": pulled["downloaded"], "pull_submitted": after - submitted,
            "identical": same, "bytes": folder_bytes(fresh.parent / ".wanflow" / "objects")}


def bench_claim(cfg, remotes: Remotes, n: int = 200) -> dict:
    from wanflow.plan.keys import key_of
    from wanflow.store.claims import Claims
    from wanflow.store.remote import RemoteStore

    remote = RemoteStore.open(remotes.fresh())
    keys = [key_of({"kind": "bench", "n": i, "salt": secrets.token_hex(4)}) for i in range(n)]

    async def one(claims: Claims, key: str) -> float:
        t0 = time.perf_counter()
        settled = await claims.settle(key, "gen:s.a#1")
        await claims.note_task(settled.claim, f"task-{key[:8]}", "dashscope")
        return time.perf_counter() - t0

    async def go() -> tuple[list[float], list[float], float]:
        claims = Claims(remote, heartbeat=30.0, stale=120.0)
        alone = [await one(claims, k) for k in keys[: n // 2]]
        gate = asyncio.Semaphore(32)

        async def bounded(key):
            async with gate:
                return await one(claims, key)
        t0 = time.perf_counter()
        together = await asyncio.gather(*map(bounded, keys[n // 2:]))
        wall = time.perf_counter() - t0
        await claims.close()
        return alone, together, wall

    alone, together, wall = asyncio.run(go())
    ms = sorted(1000 * x for x in alone)
    ms32 = sorted(1000 * x for x in together)
    return {"p50": statistics.median(ms), "p95": ms[int(0.95 * (len(ms) - 1))],
            "p50_32": statistics.median(ms32), "p95_32": ms32[int(0.95 * (len(ms32) - 1))],
            "per_task_32": 1000 * wall / len(together), "n": n}


def bench_fleet(cfg, work: Path, remotes: Remotes) -> dict:
    provider = Provider(cfg)
    try:
        single = finish(start_runner(cfg, write_spec(work / "solo", cfg.fleet_shots), provider,
                                     remotes.fresh()))
        solo_submits = len(provider.submissions())
        solo_429 = sum(r["status"] == 429 for r in provider.requests())
        provider.reset()
        remote = remotes.fresh()
        specs = [write_spec(work / f"runner{i}", cfg.fleet_shots) for i in range(cfg.runners)]
        procs = [start_runner(cfg, spec, provider, remote) for spec in specs]
        runs = [finish(p) for p in procs]
        reqs = provider.requests()
        subs = provider.submissions()
    finally:
        provider.close()
    prompts = collections.Counter(s["body"]["input"]["prompt"] for s in subs)
    solo = single["end"] - single["start"]
    fleet = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    renders = {(spec.parent / "renders" / "main.mp4").read_bytes() for spec in specs}
    locks = {spec.with_suffix(".lock").read_bytes() for spec in specs}
    return {"solo_sim": solo * cfg.time_scale, "fleet_sim": fleet * cfg.time_scale,
            "ratio": fleet / solo, "solo_submits": solo_submits, "solo_429": solo_429,
            "submits": len(subs), "distinct": len(prompts),
            "duplicates": sum(n - 1 for n in prompts.values()),
            "429": sum(r["status"] == 429 for r in reqs),
            "retries": sum(r["events"].get("retry", 0) for r in runs),
            "took_over": sum(r["events"].get("took over", 0) for r in runs),
            "adopted": sum(r["events"].get("reattach", 0) for r in runs),
            "generated": [r["generated"] for r in runs],
            "downloaded": [r["downloaded"] for r in runs],
            "same_renders": len(renders) == 1, "same_locks": len(locks) == 1,
            "ends": [round((r["end"] - min(x["start"] for x in runs)) * cfg.time_scale)
                     for r in runs],
            "starts": [round((r["start"] - min(x["start"] for x in runs)) * cfg.time_scale)
                       for r in runs],
            "last_task_end": round((max(t["time"] for t in subs) - min(
                x["start"] for x in runs)) * cfg.time_scale)}


# --------------------------------------------------------------------------- report

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--remote", choices=("s3", "file"), default="s3",
                    help="the remote of pull and claim (default s3)")
    ap.add_argument("--fleet-remote", choices=("s3", "file"), default="file",
                    help="the remote of the fleet (default file: see above)")
    ap.add_argument("--time-scale", type=float, default=100.0)
    ap.add_argument("--latency", default="60:240", help="simulated s per generation, MIN:MAX")
    ap.add_argument("--concurrency", type=int, default=5, help="account: tasks in flight")
    ap.add_argument("--submit-rps", type=float, default=2.0, help="account: submits/s")
    ap.add_argument("--pull-shots", type=int, default=100)
    ap.add_argument("--fleet-shots", type=int, default=200)
    ap.add_argument("--runners", type=int, default=4)
    ap.add_argument("--claim-heartbeat", type=float, default=3.0,
                    help="real s; a waiting runner looks for results at most this far apart")
    ap.add_argument("--claim-stale", type=float, default=15.0, help="real s")
    ap.add_argument("--skip", default="", help="comma list of: pull, claim, fleet")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    cfg = ap.parse_args(argv)
    lo, _, hi = cfg.latency.partition(":")
    cfg.latency = (float(lo), float(hi or lo))
    skip = set(filter(None, cfg.skip.split(",")))
    ts = cfg.time_scale
    print(f"remote {cfg.remote}, fleet on {cfg.fleet_remote}; "
          f"latency {cfg.latency[0]:g}-{cfg.latency[1]:g} s; time scale {ts:g}; "
          f"account quota {cfg.concurrency} in flight, {cfg.submit_rps:g} submits/s; "
          f"claims: heartbeat {cfg.claim_heartbeat:g} s, stale {cfg.claim_stale:g} s (real)",
          flush=True)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="wanflow-bench-remote-") as tmp:
        remotes: dict[str, Remotes] = {}

        def remote_of(kind: str) -> Remotes:
            if kind not in remotes:
                remotes[kind] = Remotes(kind, Path(tmp))
            return remotes[kind]
        try:
            if "claim" not in skip:
                c = results["claim"] = bench_claim(cfg, remote_of(cfg.remote))
                print(f"\nclaim ({cfg.remote}), {c['n'] // 2} keys one at a time: "
                      f"{c['p50']:.1f} ms median, {c['p95']:.1f} ms p95 per task (settle + "
                      f"name the task: 4 requests)\nclaim ({cfg.remote}), 32 at once: "
                      f"{c['p50_32']:.1f} ms median, {c['p95_32']:.1f} ms p95 each; "
                      f"{c['per_task_32']:.2f} ms of wall time per task", flush=True)
            if "pull" not in skip:
                p = results["pull"] = bench_pull(cfg, Path(tmp), remote_of(cfg.remote))
                print(f"\npull ({cfg.remote}), {cfg.pull_shots} shots: generating took "
                      f"{p['generate_sim']:.0f} simulated s ({p['generate_wall']:.1f} s real "
                      f"at time scale {ts:g}, {p['submitted']} submissions); pulling took "
                      f"{p['pull_wall']:.1f} s (run {p['pull_run']:.1f} s): {p['pulled']} "
                      f"results, {p['bytes'] / 1e6:.1f} MB, {p['pull_submitted']} "
                      f"submissions, renders "
                      f"{'byte-identical' if p['identical'] else 'DIFFERENT'}", flush=True)
            if "fleet" not in skip:
                f = results["fleet"] = bench_fleet(cfg, Path(tmp), remote_of(cfg.fleet_remote))
                ok = (f["submits"] == cfg.fleet_shots and f["duplicates"] == 0
                      and f["ratio"] <= 1.2)
                print(f"\nfleet ({cfg.fleet_remote}), {cfg.fleet_shots} shots: one runner "
                      f"{f['solo_sim']:.0f} simulated s ({f['solo_submits']} submissions, "
                      f"{f['solo_429']} x 429); {cfg.runners} runners {f['fleet_sim']:.0f} s "
                      f"= {f['ratio']:.2f}x; {f['submits']} submissions ({f['distinct']} "
                      f"shots, {f['duplicates']} duplicates); {f['429']} x 429 answered, "
                      f"{f['retries']} retries; {f['took_over']} claims taken over, "
                      f"{f['adopted']} tasks adopted; generated per runner {f['generated']}, "
                      f"downloaded {f['downloaded']}; renders "
                      f"{'identical' if f['same_renders'] else 'DIFFERENT'}, lock files "
                      f"{'identical' if f['same_locks'] else 'DIFFERENT'}\n"
                      f"runners started at {f['starts']}, finished at {f['ends']} simulated "
                      f"s; last submission at {f['last_task_end']} s\n"
                      f"goal: exactly {cfg.fleet_shots} submissions within 1.2x: "
                      f"{'MET' if ok else 'MISSED'}", flush=True)
        finally:
            for remote in remotes.values():
                remote.close()
    if cfg.json:
        print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
