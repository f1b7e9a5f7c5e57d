"""Plan time and no-op rerun time for generated specs of 100, 1,000 and 10,000 shots.

Each figure is the best of several runs of the real CLI in a fresh process, printed beside
`python -c "import wanflow"` measured in the same run (the floor any command pays), with
the peak resident memory of the process. The cache is primed synthetically (a result record
and a small object per task, keyed exactly as a real run keys them), because rendering
10,000 previews would measure the renderer, not the engine.

    python bench/bench_engine.py [--sizes 100,1000,10000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHOTS_PER_SCENE = 10

_MEASURE = """
import resource, runpy, sys, time
sys.argv = ["wanflow"] + sys.argv[1:]
t = time.perf_counter()
code = 0
try:
    runpy.run_module("wanflow", run_name="__main__")
except SystemExit as e:
    code = e.code or 0
print("BENCH", time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      code, file=sys.stderr)
"""


def generate(root: Path, shots: int) -> Path:
    """A spec of `shots` shots in scenes of ten; every third shot continues the previous one."""
    lines = ["wanflow: 1", f"name: bench-{shots}",
             "defaults: {model: wan2.7-t2v, resolution: 720P, ratio: \"16:9\", duration: 2}",
             "scenes:"]
    scenes = []
    for s in range(max(1, shots // SHOTS_PER_SCENE)):
        scenes.append(f"sc{s}")
        lines.append(f"  - id: sc{s}")
        lines.append("    shots:")
        for i in range(SHOTS_PER_SCENE):
            if i % 3 == 2:
                lines.append(f"      - {{id: s{i}, model: wan2.7-i2v, prompt: \"Scene {s}, "
                             f"shot {i} continues.\", first_frame: {{shot: s{i - 1}}}}}")
            else:
                lines.append(f"      - {{id: s{i}, prompt: \"Scene {s}, shot {i}: the "
                             f"camera tracks the runner across the plain.\"}}")
    lines += ["films:", "  - id: main", "    path: renders/main.mp4",
              f"    scenes: [{', '.join(scenes)}]"]
    (root / ".git").mkdir(exist_ok=True)
    spec = root / "wanflow.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def prime(spec: Path) -> int:
    """Fill the cache and lock file as a finished run would leave them."""
    from wanflow.backends.preview import PreviewBackend
    from wanflow.plan import planner
    from wanflow.plan.tasks import Output
    from wanflow.run import project
    from wanflow.store import Result, Store, lockfile

    proj = project.open_project(str(spec))
    plan = planner.build(proj.spec, PreviewBackend().identity)
    store = Store(proj.cache_dir)
    outputs, results, entries = {}, [], {}
    for tid, task in plan.tasks.items():
        prepared = plan.prepare(task, outputs)
        key = prepared.key
        digest = store.objects.put_bytes(key.encode())
        outputs[tid] = Output(digest, task.output_mime)
        results.append(Result(key, tid, digest, 64, {"material": prepared.material},
                              time.time()))
        entries[tid] = lockfile.LockEntry(task=tid, key=key, output=digest, size=64,
                                          backend="preview/1")
    store.actions.put_many(results)
    lockfile.write(proj.lock_path, entries)
    store.close()
    return len(plan.tasks)


def measure(args: list[str], cwd: Path, repeat: int, cold: bool = False) -> tuple[float, float]:
    """(best wall seconds, peak RSS MiB) of `wanflow ARGS` in fresh processes.

    cold: forget the parsed-spec record first, as after an edit of the spec.
    """
    best, peak = float("inf"), 0.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DASHSCOPE_API_KEY", None)
    for _ in range(repeat):
        if cold:
            shutil.rmtree(cwd / ".wanflow" / "specs", ignore_errors=True)
        proc = subprocess.run([sys.executable, "-c", _MEASURE, *args], cwd=cwd, env=env,
                              capture_output=True, text=True)
        line = [x for x in proc.stderr.splitlines() if x.startswith("BENCH")][-1].split()
        if line[3] not in ("0", "None"):
            raise SystemExit(f"wanflow {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        best = min(best, float(line[1]))
        peak = max(peak, int(line[2]) / 1024)
    return best, peak


def import_time(repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import wanflow"], env=env, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    floor = import_time(5)
    bare = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare = min(bare, time.perf_counter() - t)
    print(f"python -c pass: {bare * 1000:.0f} ms;  python -c 'import wanflow': "
          f"{floor * 1000:.0f} ms (floor of every command)")
    print(f"{'shots':>6} {'tasks':>6} {'plan s':>8} {'plan, spec edited s':>20} "
          f"{'no-op run s':>12} {'run/import':>11} {'peak MiB':>9}  goal (no-op run)")
    for size in (int(x) for x in opts.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            spec = generate(Path(tmp), size)
            tasks = prime(spec)
            plan_s, plan_mem = measure(["plan", str(spec), "--backend", "preview", "--json"],
                                       Path(tmp), opts.repeat)
            cold_s, cold_mem = measure(["plan", str(spec), "--backend", "preview", "--json"],
                                       Path(tmp), opts.repeat, cold=True)
            run_s, run_mem = measure(["run", str(spec), "--backend", "preview"], Path(tmp),
                                     opts.repeat)
            goal = {1000: "< 0.5 s", 10000: "< 3 s"}.get(size, "")
            print(f"{size:>6} {tasks:>6} {plan_s:>8.3f} {cold_s:>20.3f} {run_s:>12.3f} "
                  f"{run_s / floor:>10.1f}x {max(plan_mem, cold_mem, run_mem):>9.0f}  {goal}")


if __name__ == "__main__":
    main()
