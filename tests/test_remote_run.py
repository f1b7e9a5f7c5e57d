"""A team's remote in real runs: runners with separate caches, one remote (a real S3 API
server, or file://), one `Emulator` account. The runners that meet (two at once, one killed
under another) are processes of their own; a run that has the remote to itself runs in this
process.

* Two runners start the same spec at once: the provider sees each shot submitted once,
  and both finish with the same lock file and renders.
* A runner killed (SIGKILL) after submitting: another adopts its tasks; none is paid twice.
* A fresh runner pulls the finished spec: no submission, byte-identical renders.
* A corrupt object on the remote is reported and only that task is made again.
* A store that does not refuse a second create: claims off, with a warning.

CI-speed by default (12 shots); `WANFLOW_FLEET_SHOTS=50` runs the issue's 50-shot form.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import remote_helpers
from conftest import FAST_POLLING, ROOT, run_cli

from wanflow.backends.emulator import Emulator
from wanflow.store import lockfile

s3_server = remote_helpers.s3_server
s3_remote = remote_helpers.s3_remote
file_remote = remote_helpers.file_remote

SHOTS = int(os.environ.get("WANFLOW_FLEET_SHOTS") or 12)
KEY = "sk-test"
# The account's quotas are not what these tests are about: every shot may be in flight at
# once, on the emulator and in wanflow's own limits (a `--limit` flag still narrows them).
QUOTA = 100
LIMITS = {"WANFLOW_LIMITS": f"wan2.7-t2v={QUOTA}:{QUOTA},wan2.7-i2v={QUOTA}:{QUOTA}"}
# Claims go stale sooner where no live runner competes for them (file:// dates to the
# nanosecond; a fleet keeps the one-second heartbeat that moto's Last-Modified needs).
QUICK_CLAIMS = {"WANFLOW_CLAIM_HEARTBEAT": "0.5", "WANFLOW_CLAIM_STALE": "1.5"}
# Two live runners meet over claims that must not go stale: on a busy machine the S3
# server (a thread of the test process, beside the emulator) can answer a beat late.
LIVE_CLAIMS = {"WANFLOW_CLAIM_HEARTBEAT": "1", "WANFLOW_CLAIM_STALE": "10"}


def write_spec(root: Path, shots: int = SHOTS, extra: str = "") -> Path:
    """Shots in two scenes; the second shot starts on the first one's last frame."""
    half = max(2, shots // 2)
    lines = []
    for i in range(shots):
        if i == half:
            lines.append("  - id: s2\n    shots:")
        if i == 0:
            lines.append("  - id: s1\n    shots:")
        if i == 1:
            lines.append(f"      - {{id: x{i}, model: wan2.7-i2v, prompt: \"Shot {i}: the "
                         "lantern swings.\", first_frame: {shot: x0, frame: last}}")
        else:
            lines.append(f"      - {{id: x{i}, prompt: \"Shot {i} of the harbour at dawn.\"}}")
    scenes = "[s1, s2]" if shots > half else "[s1]"
    text = ("wanflow: 1\nname: fleet\n"
            "defaults: {model: wan2.7-t2v, resolution: 720P, ratio: \"16:9\", duration: 2, "
            "prompt_extend: false}\nscenes:\n" + "\n".join(lines) + "\n" + extra +
            f"films:\n  - {{id: main, path: renders/main.mp4, scenes: {scenes}}}\n")
    root.mkdir(parents=True, exist_ok=True)
    (root / ".git").mkdir(exist_ok=True)
    spec = root / "fleet.yaml"
    spec.write_text(text)
    return spec


def env_for(url: str | None, *, key: bool = True, **more: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DASHSCOPE_", "WANFLOW_", "AWS_"))}
    env.update(FAST_POLLING)
    env.update(LIMITS)
    if key:
        env["DASHSCOPE_API_KEY"] = KEY
    if url:
        env.update(remote_helpers.remote_env(url))
    env.update(more)
    return env


def wanflow_args(command: str, spec: Path, emu: Emulator, *extra: str) -> list[str]:
    return [command, str(spec), "--backend", "dashscope", "--base-url", emu.base_url, "--json",
            *extra]


def start(spec: Path, emu: Emulator, url: str | None, *extra: str, **env) -> subprocess.Popen:
    """A runner in a process of its own: one of several that meet over the remote."""
    return subprocess.Popen([sys.executable, "-m", "wanflow", *wanflow_args("run", spec, emu,
                                                                             *extra)],
                            env=env_for(url, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wanflow(command: str, spec: Path, emu: Emulator, url: str | None, *extra: str,
            key: bool = True, **env: str) -> subprocess.CompletedProcess:
    """The command in this process: for a run that has the remote to itself."""
    given = {"DASHSCOPE_API_KEY": KEY} if key else {}
    if url:
        given.update(remote_helpers.remote_env(url))
    return run_cli(wanflow_args(command, spec, emu, *extra), env={**LIMITS, **given, **env})


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def notices(proc) -> str:
    return "\n".join(e.get("message", "") for e in events(proc.stdout + "\n" + proc.stderr)
                     if e["event"] == "notice")


def submitted(emu: Emulator) -> collections.Counter:
    return collections.Counter(s["body"]["input"]["prompt"] for s in emu.submissions())


def emulator(**kw) -> Emulator:
    # Quick tasks for a run that has the remote to itself; runners that are to meet over
    # a claim need tasks that last.
    kw.setdefault("latency", (0.2, 0.4))
    # Full-size clips (cheap to render): a scene is assembled by stream copy instead of
    # upscaling quarter-size clips to 720P and encoding them again.
    kw.setdefault("render_scale", 1.0)
    kw.setdefault("concurrency", QUOTA)
    kw.setdefault("submit_rps", QUOTA)
    return Emulator(**kw)


# --------------------------------------------------------------------------- the fleet

@pytest.mark.slow
def test_two_runners_pay_once_and_a_third_pulls_it_all(tmp_path, s3_remote):
    a, b, c = (write_spec(tmp_path / name) for name in "abc")
    with emulator(latency=(1.0, 1.5)) as emu:
        runners = [start(spec, emu, s3_remote, **LIVE_CLAIMS) for spec in (a, b)]
        outs = [p.communicate(timeout=300) for p in runners]
        for proc, (_, err) in zip(runners, outs, strict=True):
            assert proc.returncode == 0, err[-3000:]
        counts = submitted(emu)
        assert len(counts) == SHOTS and max(counts.values()) == 1, counts
        lock_a, lock_b = (p.with_suffix(".lock").read_bytes() for p in (a, b))
        assert lock_a == lock_b
        render = (tmp_path / "a" / "renders" / "main.mp4").read_bytes()
        assert (tmp_path / "b" / "renders" / "main.mp4").read_bytes() == render
        waited = [e for out, _ in outs for e in events(out)
                  if e["event"] == "notice" and "waiting for its result" in e["message"]]
        assert waited, "the runners should have met over a claim"

        # A fresh runner — no cache, and no API key — pulls what the fleet paid for.
        pulled = wanflow("pull", c, emu, s3_remote, key=False)
        assert pulled.returncode == 0, pulled.stderr[-3000:]
        assert len(emu.submissions()) == SHOTS
        assert (tmp_path / "c" / "renders" / "main.mp4").read_bytes() == render
        assert c.with_suffix(".lock").read_bytes() == lock_a
        done = [e for e in events(pulled.stdout) if e["event"] == "done"][-1]
        assert done["generated"] == 0 and done["downloaded"] >= SHOTS


def _claim_files(remote_dir: Path, suffix: str) -> int:
    return sum(1 for p in (remote_dir / "v1" / "claims").rglob(f"*{suffix}")
               if p.name.endswith(suffix)) if (remote_dir / "v1" / "claims").exists() else 0


@pytest.mark.slow
def test_a_killed_runners_tasks_are_adopted_not_paid_again(tmp_path, file_remote):
    a, b = (write_spec(tmp_path / name) for name in "ab")
    remote_dir = Path(file_remote.removeprefix("file://"))
    with emulator(latency=(1.5, 2.0)) as emu:
        victim = start(a, emu, file_remote, "--limit", "wan2.7-t2v=4", **QUICK_CLAIMS)
        deadline = time.time() + 60
        steady = 0
        while time.time() < deadline:
            tasks = _claim_files(remote_dir, ".task")
            # Kill once every submission so far is named beside its claim (a kill in the
            # milliseconds between the provider's answer and that write is the one window
            # where only the dead runner's journal knows the task).
            steady = steady + 1 if tasks >= 3 and tasks == len(emu.submissions()) else 0
            if steady >= 2:
                break
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        before = len(emu.submissions())
        assert before >= 3

        rescuer = wanflow("run", b, emu, file_remote, **QUICK_CLAIMS)
        assert rescuer.returncode == 0, rescuer.stderr[-3000:]
        counts = submitted(emu)
        assert len(counts) == SHOTS and max(counts.values()) == 1, counts
        adopted = [e for e in events(rescuer.stdout)
                   if e["event"] == "reattach" and e["state"] == "adopted"]
        assert len(adopted) >= 1
        assert "silent for more than" in notices(rescuer)
        assert (tmp_path / "b" / "renders" / "main.mp4").exists()


def corrupt(remote_dir: Path, digest: str) -> Path:
    obj = remote_dir / "v1" / "objects" / digest[:2] / digest[2:]
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    return obj


def test_a_corrupt_remote_object_is_reported_and_only_that_task_made_again(tmp_path,
                                                                           file_remote):
    a, d, e = (write_spec(tmp_path / name, shots=4) for name in "ade")
    remote_dir = Path(file_remote.removeprefix("file://"))
    with emulator() as emu:
        first = wanflow("run", a, emu, file_remote, **QUICK_CLAIMS)
        assert first.returncode == 0, first.stderr[-3000:]
        victim = lockfile.read(a.with_suffix(".lock"))["gen:s2.x3#1"]   # nothing depends on it
        obj = corrupt(remote_dir, victim.output)

        # With claims, the claim names the finished provider task: once the claim is
        # stale, the task is adopted and its video fetched again — nothing is paid.
        second = wanflow("run", d, emu, file_remote, **QUICK_CLAIMS)
        assert second.returncode == 0, second.stderr[-3000:]
        assert notices(second).count("does not hash to its name") == 1
        assert sum(submitted(emu).values()) == 4
        assert [x["task"] for x in events(second.stdout)
                if x["event"] == "reattach" and x["state"] == "adopted"] == ["gen:s2.x3#1"]
        assert hashlib.sha256(obj.read_bytes()).hexdigest() == victim.output   # replaced

        # Without claims, only that task is generated again.
        corrupt(remote_dir, victim.output)
        third = wanflow("run", e, emu, file_remote, "--no-remote-claims")
        assert third.returncode == 0, third.stderr[-3000:]
        assert "does not hash to its name" in notices(third)
        counts = submitted(emu)
        assert counts["Shot 3 of the harbour at dawn."] == 2 and sum(counts.values()) == 5
        fourth = wanflow("pull", write_spec(tmp_path / "f", shots=4), emu, file_remote)
        assert fourth.returncode == 0, fourth.stderr[-3000:]
        assert "does not hash" not in notices(fourth)


def test_a_store_that_does_not_refuse_a_second_create_turns_claims_off(tmp_path,
                                                                      file_remote,
                                                                      monkeypatch):
    from wanflow.run import session as sessions
    from wanflow.settings import Secret, Settings
    from wanflow.store.remote import RemoteStore

    async def overwrite(self, name, data):   # what a store without create-only does
        await self.write(name, data)
        return True

    monkeypatch.setattr(RemoteStore, "create", overwrite)
    spec = write_spec(tmp_path / "a", shots=2)
    seen: list[tuple[str, dict]] = []
    with emulator() as emu:
        settings = Settings(backend="dashscope", api_key=Secret(KEY), base_url=emu.base_url,
                            poll_first=0.2, poll_max=0.4, remote=file_remote)
        with sessions.Session.open(str(spec), settings) as session:
            summary = sessions.run(session, install_signals=False,
                                   reporter=lambda event, **data: seen.append((event.value,
                                                                               data)))
    assert summary.ok
    warnings = [d["message"] for e, d in seen if e == "notice" and "claims are off" in
                d["message"]]
    assert len(warnings) == 1 and "does not refuse a second create" in warnings[0]
    remote_dir = Path(file_remote.removeprefix("file://"))
    assert not (remote_dir / "v1" / "claims").exists()
    assert len(list((remote_dir / "v1" / "results").rglob("*.json"))) >= 2   # written through


def test_no_remote_claims_and_preview_runs_claim_nothing(tmp_path, file_remote):
    spec = write_spec(tmp_path / "a", shots=2)
    remote_dir = Path(file_remote.removeprefix("file://"))
    with emulator() as emu:
        proc = wanflow("run", spec, emu, file_remote, "--no-remote-claims")
        assert proc.returncode == 0, proc.stderr[-3000:]
    preview = run_cli(["run", spec, "--backend", "preview", "--remote", file_remote])
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert not (remote_dir / "v1" / "claims").exists()
    assert len(list((remote_dir / "v1" / "results").rglob("*.json"))) >= 4


# ------------------------------------------------------------------------ plan, status, pull, push

def preview(command: str, spec: Path, *extra: str, url: str | None = None,
            cache: Path | None = None) -> subprocess.CompletedProcess:
    args = [command, str(spec), *extra]
    if command != "push":
        args += ["--backend", "preview"]
    if cache is not None:
        args += ["--cache", str(cache)]
    if url is not None:
        args += ["--remote", url]
    return run_cli(args)


def test_plan_and_status_say_what_the_remote_has_and_pull_fetches_it(tmp_path, file_remote):
    a, b = (write_spec(tmp_path / name, shots=3) for name in "ab")
    assert preview("run", a, url=file_remote).returncode == 0
    plan = preview("plan", b, "--json", url=file_remote)
    assert plan.returncode == 0, plan.stderr
    report = json.loads(plan.stdout)
    statuses = {t["task"]: t["status"] for t in report["tasks"]}
    assert statuses["gen:s1.x0#1"] == statuses["film:main"] == "remote"
    assert report["totals"]["remote"] >= 6 and report["totals"]["cost"] == 0
    text = preview("plan", b, url=file_remote)
    assert "on the remote" in text.stdout
    status = json.loads(preview("status", b, "--json", url=file_remote).stdout)
    assert {"task": "film:main"} in status["remote"]
    assert not any(s["task"] == "film:main" for s in status["stale"])

    pulled = preview("pull", b, url=file_remote)
    assert pulled.returncode == 0, pulled.stderr
    render = "renders/main.preview.mp4"
    assert (tmp_path / "b" / render).read_bytes() == (tmp_path / "a" / render).read_bytes()
    assert preview("status", b, "--check", url=file_remote).returncode == 0


def test_pull_names_what_the_remote_lacks_and_exits_1(tmp_path, file_remote):
    a = write_spec(tmp_path / "a", shots=2)
    assert preview("run", a, url=file_remote).returncode == 0
    b = write_spec(tmp_path / "b", shots=2,
                   extra="  - id: s3\n    shots:\n      - {id: late, prompt: \"Added later.\"}\n")
    pulled = preview("pull", b, url=file_remote)
    assert pulled.returncode == 1
    assert "gen:s3.late#1 is not on the remote" in pulled.stderr
    assert "would generate it" in pulled.stderr
    no_remote = preview("pull", b)
    assert no_remote.returncode == 2 and "pull needs a remote" in no_remote.stderr


def test_push_uploads_what_the_lock_files_pin(tmp_path, file_remote):
    a, b = (write_spec(tmp_path / name, shots=2) for name in "ab")
    assert preview("run", a).returncode == 0                # no remote yet
    pushed = preview("push", a, "--json", url=file_remote)
    assert pushed.returncode == 0, pushed.stderr
    report = json.loads(pushed.stdout)
    assert report["entries"] >= 5 and report["missing"] == []
    assert report["uploaded"] + report["present"] == report["entries"]
    again = json.loads(preview("push", a, "--json", url=file_remote).stdout)
    assert again["uploaded"] == 0                            # content-addressed: sent once
    assert preview("pull", b, url=file_remote).returncode == 0
    render = "renders/main.preview.mp4"
    assert (tmp_path / "b" / render).read_bytes() == (tmp_path / "a" / render).read_bytes()

    shutil.rmtree(tmp_path / "a" / ".wanflow" / "objects")
    broken = preview("push", a, url=file_remote)
    assert broken.returncode == 1 and "missing or corrupt in the local cache" in broken.stdout


# --------------------------------------------------------------------------- settings, imports

def test_the_remote_comes_from_flags_environment_or_user_config_never_the_spec(project):
    from wanflow.errors import ConfigError, SpecError
    from wanflow.settings import Settings
    from wanflow.spec import load

    env = {"WANFLOW_REMOTE": "s3://env/x", "WANFLOW_CLAIM_HEARTBEAT": "1",
           "WANFLOW_CLAIM_STALE": "3", "WANFLOW_REMOTE_ANONYMOUS": "1"}
    s = Settings.resolve(env, config={"remote": "s3://config/x"})
    assert (s.remote, s.claim_heartbeat, s.claim_stale, s.remote_anonymous) == (
        "s3://env/x", 1.0, 3.0, True)
    assert Settings.resolve({}, config={"remote": "s3://config/x",
                                        "remote_endpoint": "https://minio:9000"}).remote_endpoint \
        == "https://minio:9000"
    assert Settings.resolve(env, remote="file:///flag", remote_claims=False).remote_claims \
        is False
    assert Settings.resolve({}).remote is None and Settings.resolve({}).remote_claims is True
    with pytest.raises(ConfigError, match="shorter than"):
        Settings.resolve({"WANFLOW_CLAIM_HEARTBEAT": "5", "WANFLOW_CLAIM_STALE": "5"})
    with pytest.raises(ConfigError, match="WANFLOW_REMOTE_ANONYMOUS"):
        Settings.resolve({"WANFLOW_REMOTE_ANONYMOUS": "maybe"})
    spec = project / "s.yaml"
    spec.write_text("wanflow: 1\nname: s\nsettings: {remote: \"s3://attacker/x\"}\nscenes:\n"
                    "  - id: a\n    shots: [{id: x, model: wan2.7-t2v, prompt: p}]\n")
    with pytest.raises(SpecError):
        load(str(spec))


def test_only_the_remote_module_imports_obstore_and_only_when_a_remote_is_used(project):
    for path in (ROOT / "wanflow").rglob("*.py"):
        text = path.read_text("utf-8")
        if path.relative_to(ROOT / "wanflow").as_posix() != "store/remote.py":
            assert "import obstore" not in text and "from obstore" not in text, path
    spec = write_spec(project / "p", shots=1)
    code = ("import sys, wanflow, wanflow.cli\n"
            "from wanflow.run import session as sessions\n"
            "from wanflow.settings import Settings\n"
            f"with sessions.Session.open({str(spec)!r}, Settings(backend='preview')) as s:\n"
            "    sessions.run(s, reporter=lambda *a, **k: None, install_signals=False)\n"
            "print('obstore' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=240, env=env_for(None, key=False), check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"
