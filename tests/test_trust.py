"""Trust at the edges: the lock tells the truth, nothing is paid by surprise, renders and the
store stay apart, stuck journal entries are resolved, costs are honest, secrets stay secret."""
from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import pytest
from conftest import run_cli

from wanflow import media
from wanflow.backends import select
from wanflow.backends.emulator import Emulator
from wanflow.errors import ConfigError, UsageError
from wanflow.plan import cost, planner
from wanflow.plan.cost import Pricing
from wanflow.run import budget
from wanflow.spec.nodes import Input, Scene, Shot, Spec, Where
from wanflow.store import Store, lockfile

KEY = "sk-test"
SPEC = """\
wanflow: 1
name: trust
settings: {backend: %(backend)s}
defaults: {model: wan2.7-t2v, resolution: 720P, ratio: "16:9", duration: 2, prompt_extend: false}
scenes:
  - id: s
    path: renders/scene.mp4
    shots:
      - {id: a, prompt: "%(a)s"}
      - {id: b, prompt: "The beam sweeps across the water."}
films:
  - {id: main, path: renders/main.mp4, scenes: [s]}
"""


def write(root: Path, a: str = "The lighthouse at dawn.", backend: str = "auto") -> Path:
    spec = root / "trust.yaml"
    spec.write_text(SPEC % {"a": a, "backend": backend})
    return spec


def run_json(spec: Path, *extra, env=None, check=0):
    proc = run_cli(["run", str(spec), "--json", *extra], env=env, check=check)
    events = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    return proc, events


def plan_json(spec: Path, *extra, env=None, check=0) -> dict:
    return json.loads(run_cli(["plan", str(spec), "--json", *extra], env=env,
                              check=check).stdout)


def emulated(emu: Emulator) -> tuple[list[str], dict]:
    return ["--backend", "dashscope", "--base-url", emu.base_url], {"DASHSCOPE_API_KEY": KEY}


# ---- 1. the lock file tells the truth --------------------------------------------------------

def test_lock_holds_exactly_the_current_plan_after_edit_and_revert(project):
    spec = write(project)
    run_json(spec)
    first = lockfile.read(project / "trust.preview.lock")
    write(project, a="The lighthouse at dusk.")
    _, events = run_json(spec)
    assert [e["task"] for e in events if e["event"] == "finished" and
            e["task"].startswith("gen:")] == ["gen:s.a#1"]
    write(project)                                   # revert: everything is cached again
    _, events = run_json(spec)
    done = events[-1]
    assert done["generated"] == 0
    assert lockfile.read(project / "trust.preview.lock") == first
    run_cli(["cache", "gc", str(spec), "--apply"], check=0)
    plan = plan_json(spec, "--backend", "preview")
    assert plan["totals"]["to_run"] == 0, plan["tasks"]


def test_a_preview_run_never_touches_the_paid_lock_or_render(project):
    spec = write(project)
    # Full-size clips: the scene of cuts is assembled by stream copy instead of an upscale.
    with Emulator(latency=(0.1, 0.2), render_scale=1.0) as emu:
        flags, env = emulated(emu)
        run_json(spec, *flags, env=env)
        paid_lock = (project / "trust.lock").read_bytes()
        paid_film = (project / "renders" / "main.mp4").read_bytes()
        run_json(spec, env=env)              # the key is set, but auto means preview
        assert (project / "trust.lock").read_bytes() == paid_lock
        assert (project / "renders" / "main.mp4").read_bytes() == paid_film
        assert media.probe(str(project / "renders" / "main.preview.mp4")).duration > 1
        status = json.loads(run_cli(["status", str(spec), "--json", *flags], env=env,
                                    check=0).stdout)
        made = {o["path"]: o["made_by"] for o in status["outputs"]}
        assert made["renders/main.mp4"] == "paid"
        preview = json.loads(run_cli(["status", str(spec), "--json"], env=env,
                                     check=0).stdout)
        assert {o["path"]: o["made_by"] for o in preview["outputs"]}[
            "renders/main.preview.mp4"] == "preview"
        # gc pins both kinds: neither run has anything left to do afterwards.
        run_cli(["cache", "gc", str(spec), "--apply"], check=0)
        assert plan_json(spec, *flags, env=env)["totals"]["to_run"] == 0
        assert plan_json(spec)["totals"]["to_run"] == 0


# ---- 2. the main job never spends by default ---------------------------------------------------

@pytest.mark.parametrize("flag,spec,key,expected", [
    (None, "auto", True, "preview"),       # a key in the shell is not a request to pay
    (None, None, True, "preview"),
    ("auto", "dashscope", True, "preview"),
    (None, "dashscope", True, "dashscope"),
    (None, "dashscope", False, "preview"),
    ("dashscope", "preview", True, "dashscope"),
    ("preview", "dashscope", True, "preview"),
])
def test_backend_choice_is_explicit(flag, spec, key, expected):
    choice = select(flag, spec, key)
    assert choice.name == expected and choice.reason


def test_dashscope_flag_without_key_is_a_config_error():
    with pytest.raises(ConfigError):
        select("dashscope", None, False)


def test_a_paid_plan_needs_no_key_but_a_paid_run_does(project):
    """plan, status and diff only look: `--backend dashscope` shows what a paid run would
    cost without a key (a fork's pull request has none); `run` refuses before anything."""
    spec = write(project)
    report = plan_json(spec, "--backend", "dashscope")
    assert report["backend"].startswith("dashscope") and "no DASHSCOPE_API_KEY" in \
        report["backend_reason"]
    assert report["totals"]["to_run"] > 0 and report["totals"]["billed_seconds"] > 0
    run_cli(["status", str(spec), "--backend", "dashscope"], check=0)
    proc = run_cli(["run", str(spec), "--backend", "dashscope"], check=4)
    assert "needs DASHSCOPE_API_KEY" in proc.stderr
    assert not (project / "renders").exists() and not (project / "trust.lock").exists()


def test_the_chosen_backend_is_said_first_and_in_json(project):
    spec = write(project)
    proc = run_cli(["plan", str(spec), "--json"], env={"DASHSCOPE_API_KEY": KEY}, check=0)
    assert proc.stderr.splitlines()[0].startswith('{"event": "notice", "message": "backend: '
                                                  'preview')
    report = json.loads(proc.stdout)
    assert report["backend"].startswith("preview") and "dashscope" in report["backend_reason"]
    proc = run_cli(["run", str(spec)], env={"DASHSCOPE_API_KEY": KEY}, check=0)
    assert proc.stderr.splitlines()[0].startswith("wanflow: backend: preview (")
    _, events = run_json(spec)
    assert events[0]["event"] == "plan" and events[0]["backend_reason"]


# ---- 4. numbers from the command line ------------------------------------------------------------

@pytest.mark.parametrize("args", [["--max-cost", "nan"], ["--max-cost", "inf"],
                                  ["--max-cost", "-1"], ["--max-cost", "5 dollars"],
                                  ["--limit", "wan2.7-t2v=2:nan"], ["--limit", "wan2.7-t2v=0"]])
def test_non_finite_or_malformed_limits_are_usage_errors(project, args):
    spec = write(project)
    proc = run_cli(["run", str(spec), *args], check=2)
    assert "Traceback" not in proc.stderr
    assert not (project / "renders").exists()


# ---- 5. renders and the store are separate files ------------------------------------------------

def test_editing_a_render_cannot_corrupt_the_store(project):
    spec = write(project)
    run_json(spec)
    render = project / "renders" / "main.preview.mp4"
    clean = render.read_bytes()
    with open(render, "ab") as f:
        f.write(b"appended by an editor")
    report = json.loads(run_cli(["cache", "verify", str(spec), "--json"], check=0).stdout)
    assert report["corrupt"] == []
    run_json(spec)
    assert render.read_bytes() == clean        # the render is restored from the store


def _corrupt_clip(project: Path) -> None:
    with Store(project / ".wanflow") as store:
        clip = next(r for r in store.actions.all() if r.task == "gen:s.a#1")
        path = store.objects.path(clip.digest)
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF                 # same size: only a hash notices
    path.write_bytes(bytes(raw))


def test_verify_forgets_everything_made_from_a_corrupt_object(project):
    spec = write(project)
    run_json(spec)
    _corrupt_clip(project)
    report = json.loads(run_cli(["cache", "verify", str(spec), "--json"], check=1).stdout)
    assert len(report["corrupt"]) == 1
    assert {"gen:s.a#1", "scene:s", "film:main"} <= set(report["invalidated"])
    _, events = run_json(spec)
    ran = {e["task"] for e in events if e["event"] == "finished"}
    assert {"gen:s.a#1", "scene:s", "film:main"} <= ran


def test_a_corrupt_clip_is_never_assembled(project):
    spec = write(project)
    run_json(spec)
    _corrupt_clip(project)
    # A new transition reassembles the scene from the (corrupt) clip: refused, not built.
    spec.write_text(spec.read_text().replace("path: renders/scene.mp4",
                                             "path: renders/scene.mp4\n    transition: "
                                             "{type: crossfade, seconds: 0.5}"))
    _, events = run_json(spec, check=1)
    failed = {e["task"]: e for e in events if e["event"] == "failed"}
    assert set(failed) == {"scene:s"} and "corrupt" in failed["scene:s"]["error"]
    _, events = run_json(spec)                 # the clip is made again, then the scene
    ran = {e["task"] for e in events if e["event"] == "finished"}
    assert {"gen:s.a#1", "scene:s", "film:main"} <= ran


# ---- 7. never stuck ------------------------------------------------------------------------------

def test_preview_runs_keep_no_journal(project):
    spec = write(project)
    run_json(spec)
    assert not (project / ".wanflow" / "journal.db").exists()


def test_an_expired_result_asks_for_one_command_and_that_command_works(project):
    spec = write(project)
    with Emulator(latency=(0.1, 0.2), render_scale=1.0) as emu:
        flags, env = emulated(emu)
        emu.faults.expired_urls = 1
        _, events = run_json(spec, *flags, "--limit", "wan2.7-t2v=1", env=env, check=1)
        failed = [e for e in events if e["event"] == "failed"]
        assert len(failed) == 1 and failed[0]["code"] == "URLExpired"
        command = failed[0]["error"].split("run: ", 1)[1]
        assert command.startswith(f"wanflow run {spec} --resubmit ")
        before = len(emu.submissions())
        _, events = run_json(spec, *flags, env=env, check=1)   # stays stuck, costs nothing
        assert len(emu.submissions()) == before
        args = shlex.split(command)[2:]
        _, events = run_json(Path(args[0]), *args[1:], *flags, env=env, check=0)
        assert len(emu.submissions()) == before + 1
        assert events[-1]["generated"] == 1


# ---- 8. cost in the account's currency -----------------------------------------------------------

def test_plan_prices_in_the_region_currency_and_says_when_unknown(project):
    spec = write(project)
    beijing = plan_json(spec, "--backend", "dashscope", env={"DASHSCOPE_API_KEY": KEY})
    assert beijing["currency"] == "CNY" and beijing["totals"]["unpriced"] == 2
    assert all(t["cost"] is None for t in beijing["tasks"] if t["task"].startswith("gen:"))
    singapore = plan_json(spec, "--backend", "dashscope", "--region", "singapore",
                          env={"DASHSCOPE_API_KEY": KEY})
    assert singapore["currency"] == "USD" and singapore["totals"]["unpriced"] == 0
    assert singapore["totals"]["cost"] == pytest.approx(2 * 2 * 0.10)
    proc = run_cli(["plan", str(spec), "--backend", "dashscope", "--max-cost", "5"],
                   env={"DASHSCOPE_API_KEY": KEY}, check=3)
    assert "price" in proc.stderr
    prices = project / "prices.toml"
    prices.write_text('[prices.beijing."wan2.7-t2v"]\n"720P" = 0.5\n')
    ok = plan_json(spec, "--backend", "dashscope", "--prices", str(prices), "--max-cost",
                   "3CNY", env={"DASHSCOPE_API_KEY": KEY})
    assert ok["totals"]["cost"] == pytest.approx(2.0)
    run_cli(["plan", str(spec), "--backend", "dashscope", "--prices", str(prices),
             "--max-cost", "1.5CNY"], env={"DASHSCOPE_API_KEY": KEY}, check=3)
    run_cli(["plan", str(spec), "--backend", "dashscope", "--max-cost", "5USD"],
            env={"DASHSCOPE_API_KEY": KEY}, check=2)


def test_a_paid_generation_at_no_known_price_records_no_cost(project):
    """wan2.7-t2v has no Beijing list price: what it cost is unknown, never 0.00 — not in
    the run's totals, the events or the lock file."""
    spec = write(project)
    with Emulator(latency=(0.1, 0.2)) as emu:
        flags, env = emulated(emu)
        proc = run_cli(["run", str(spec), *flags], env=env, check=0)
        assert "cost ?" in proc.stderr and "0.00" not in proc.stderr
        lock = lockfile.read(str(project / "trust.lock"))
        gens = [e for t, e in lock.items() if t.startswith("gen:")]
        assert gens and all(e.cost is None and e.billed_seconds for e in gens)
        write(project, a="The lighthouse at dusk.")
        proc, events = run_json(spec, *flags, env=env)
        finished = [e for e in events if e["event"] == "finished"
                    and e["task"].startswith("gen:")]
        assert [e["task"] for e in finished] == ["gen:s.a#1"]
        assert finished[0]["cost"] is None and finished[0]["priced"] is False
        assert events[-1]["event"] == "done" and events[-1]["unpriced"] == 1


def test_prices_come_from_the_user_config_file_not_the_project(project, tmp_path):
    spec = write(project)
    config = tmp_path / "xdg" / "wanflow"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[prices.beijing."wan2.7-t2v"]\n"720P" = 0.25\n')
    (project / "config.toml").write_text('[prices.beijing."wan2.7-t2v"]\n"720P" = 0.0\n')
    env = {"DASHSCOPE_API_KEY": KEY, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    report = plan_json(spec, "--backend", "dashscope", env=env)
    assert report["totals"]["cost"] == pytest.approx(1.0)


W = Where("t.yaml")


def _r2v(model: str, videos: int) -> planner.Plan:
    from wanflow.spec.nodes import Asset

    assets = {f"v{i}": Asset(f"v{i}", W, path=f"v{i}.mp4", file=f"/x/v{i}.mp4")
              for i in range(videos)}
    shot = Shot("s", "r", model, W, prompt="character1 waves", duration=5, size="1280*720",
                resolution="720P",
                inputs=tuple(Input("reference_video", asset=f"v{i}") for i in range(videos)))
    spec = Spec(file="/x/t.yaml", root="/x", name="t", assets=assets,
                scenes=(Scene("s", W, shots=(shot,)),))
    return planner.build(spec, "dashscope")


def test_reference_video_input_seconds_are_billed():
    from wanflow.plan.tasks import Output, TaskId

    def billed(model: str, videos: int, seconds: float) -> float:
        plan = _r2v(model, videos)
        outs = {TaskId.asset(f"v{i}"): Output("0" * 64, "video/mp4", seconds)
                for i in range(videos)}
        return cost.billed_seconds(plan.tasks["gen:s.r#1"], outs, plan.picks, {})

    assert billed("wan2.6-r2v", 1, 8.0) == 5 + 5          # one video: at most 5 s billed
    assert billed("wan2.6-r2v", 2, 8.0) == 5 + 2 * 2.5
    assert billed("wan2.6-r2v", 1, 3.0) == 5 + 3
    assert billed("wan2.7-r2v", 2, 3.0) == 5 + 2 * 3      # wan2.7: input and output


def test_flash_models_have_a_silent_price():
    prices = Pricing.for_region("singapore")
    assert prices.per_second("wan2.6-i2v-flash", "720P") == pytest.approx(0.05)
    assert prices.per_second("wan2.6-i2v-flash", "720P", silent=True) == pytest.approx(0.025)
    assert prices.per_second("wan2.7-t2v", "720P", silent=True) == pytest.approx(0.10)


def test_money_is_parsed_strictly():
    assert budget.parse_money("5") == budget.Money(5.0)
    assert budget.parse_money("30CNY") == budget.Money(30.0, "CNY")
    assert budget.parse_money("2.5 usd") == budget.Money(2.5, "USD")
    for bad in ("nan", "inf", "-1", "1e400", "", "5 dollars"):
        with pytest.raises(UsageError):
            budget.parse_money(bad)


# ---- 10. the key goes only where the operator says -----------------------------------------------

def test_an_unreachable_base_url_fails_fast_with_the_url(project):
    spec = write(project)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]            # nothing listens on it once closed
    url = f"http://127.0.0.1:{port}/api/v1"
    proc = run_cli(["run", str(spec), "--backend", "dashscope", "--base-url", url],
                   env={"DASHSCOPE_API_KEY": KEY}, check=4, timeout=60)
    assert url in proc.stderr and "Traceback" not in proc.stderr


# ---- 13. nothing odd reaches the terminal --------------------------------------------------------

@pytest.mark.parametrize("bad", ["sk-abc\ndef", "sk-abc def", "sk-\x1b[31mred", "sk-clé"])
def test_a_malformed_key_is_refused_without_showing_it(project, bad):
    spec = write(project)
    proc = run_cli(["plan", str(spec), "--backend", "dashscope", "--json"],
                   env={"DASHSCOPE_API_KEY": bad}, check=4)
    assert "malformed" in proc.stderr
    for part in ("abc", "def", "red", "clé", "\x1b"):
        assert part not in proc.stderr + proc.stdout


def test_control_characters_from_a_spec_are_escaped(project):
    spec = write(project, a="The lighthouse \x1b[2J at dawn.")
    spec.write_text(spec.read_text().replace("name: trust", 'name: "trust\\e]0;pwned\\a"'))
    for args in (["status", str(spec)], ["plan", str(spec)], ["run", str(spec)]):
        proc = run_cli(args, check=None)
        assert "\x1b" not in proc.stdout + proc.stderr, args
