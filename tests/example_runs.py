"""Example runs made once per test session, whichever test asks first.

The Wan 3.0 example is run through the emulator both by the run of every example
(test_examples_run.py) and by the checks of what Wan 3.0 sends and locks (test_wan3.py): a
25 s shot and a chain through an edit, assembled at full size. The review pages of the film
(test_review_browser.py) are opened by two tests that pytest-xdist may give to two workers.
The first test to ask makes the run into a folder that every worker of the session sees;
the others wait for it and read the same folder, which no test writes to.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT, run_cli

from wanflow import models
from wanflow.backends.emulator import Emulator

KEY = {"DASHSCOPE_API_KEY": "sk-test"}
# An account without quotas, and wanflow's limits lifted to match: the examples run end to
# end over HTTP, not within a provider's quotas (whose own tests are elsewhere).
QUOTA = 100
UNTHROTTLED = {"WANFLOW_LIMITS": ",".join(f"{name}={QUOTA}:{QUOTA}" for name in models.MODELS)}


@dataclass(frozen=True)
class PaidRun:
    spec: Path                 # the example's spec in the run's copy of examples/
    returncode: int
    stderr: str
    submissions: list[dict]    # the emulator's, as Emulator.submissions() gives them
    requests: list[dict]       # the emulator's, as Emulator.requests() gives them


def paid_run(tmp_path_factory, rel: str) -> PaidRun:
    """`wanflow run examples/REL --backend dashscope` against an emulator: done once per
    session, and read by every test that asks for it."""
    folder = once(tmp_path_factory, "paid-" + rel.replace("/", "-"), lambda f: _run(f, rel))
    record = json.loads((folder / "run.json").read_text())
    return PaidRun(spec=folder / "examples" / rel, **record)


def _run(folder: Path, rel: str) -> None:
    shutil.copytree(ROOT / "examples", folder / "examples",
                    ignore=shutil.ignore_patterns(".wanflow", "renders", "*.lock"))
    # Full-size clips: a scene of cuts is assembled by stream copy instead of an upscale.
    with Emulator(latency=(0.3, 0.6), render_scale=1.0, concurrency=QUOTA,
                  submit_rps=QUOTA) as emu:
        proc = run_cli(["run", str(folder / "examples" / rel), "--backend", "dashscope",
                        "--base-url", emu.base_url], env={**KEY, **UNTHROTTLED})
        record = {"returncode": proc.returncode, "stderr": proc.stderr,
                  "submissions": emu.submissions(), "requests": emu.requests()}
    (folder / "run.json").write_text(json.dumps(record, default=str))


def once(tmp_path_factory, name: str, make) -> Path:
    """The folder `name` that `make(folder)` filled, made by the first worker to get here
    (the others wait on a lock); a `make` that failed is tried again by the next."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".done").touch()
    return folder
