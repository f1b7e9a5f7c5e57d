"""End to end on the preview backend: what runs, what is reused, and why."""
import json
import os
from pathlib import Path

import pytest
from conftest import run_cli

from wanflow import media
from wanflow.store import Store

SPEC = """\
wanflow: 1
name: demo
defaults:
  model: wan2.7-t2v
  resolution: 720P
  ratio: "16:9"
  prompt_extend: false
assets:
  hero: media/hero.png
  score: media/score.wav
scenes:
  - id: chase
    path: renders/chase.mp4
    audio: {asset: score, volume: 0.8, duck: 0.3}
    transition: {type: crossfade, seconds: 0.5}
    shots:
      - id: wide
        prompt: "{wide}"
        duration: 2
      - id: pounce
        model: wan2.7-i2v
        first_frame: {shot: wide, frame: last}
        prompt: "The cheetah leaps."
        duration: 2
      - id: hero
        model: wan2.6-i2v
        first_frame: hero
        prompt: "The hero turns to camera."
        duration: 2
        needs: [wide]
films:
  - id: main
    path: renders/main.mp4
    scenes: [chase]
    transition: {transition}
"""


def write_spec(root: Path, wide="Extreme long shot over the grassland.", transition="cut"):
    (root / "media").mkdir(exist_ok=True)
    if not (root / "media" / "hero.png").exists():
        media.write_card_image(str(root / "media" / "hero.png"), "hero", 640, 360)
        media.write_tone(str(root / "media" / "score.wav"), 4.0)
    spec = root / "demo.yaml"
    spec.write_text(SPEC.replace("{wide}", wide).replace("{transition}", transition))
    return spec


FULL_SIZE = {"WANFLOW_PREVIEW_SCALE": "1"}   # where a test checks the model's frame size


def run_json(spec, *extra, check=0, env=None):
    proc = run_cli(["run", str(spec), "--backend", "preview", "--json", *extra], check=check,
                   env=env)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    ran = sorted(e["task"] for e in events if e["event"] == "finished")
    done = [e for e in events if e["event"] == "done"][-1]
    return ran, done


def plan_json(spec, env=None):
    proc = run_cli(["plan", str(spec), "--backend", "preview", "--json"], check=0, env=env)
    return {t["task"]: t for t in json.loads(proc.stdout)["tasks"]}


def test_run_then_noop_then_prompt_edit(project):
    spec = write_spec(project)
    ran, done = run_json(spec, env=FULL_SIZE)
    assert done["generated"] == 3 and done["failed"] == 0
    for out in ("renders/chase.preview.mp4", "renders/main.preview.mp4"):
        probe = media.probe(str(project / out))
        assert (probe.width, probe.height) == (1280, 720)
        assert probe.video_codec == "h264" and probe.has_audio
    assert (project / "demo.preview.lock").exists() and not (project / "demo.lock").exists()

    ran, done = run_json(spec, env=FULL_SIZE)
    assert ran == [] and done["generated"] == 0

    write_spec(project, wide="Extreme long shot; dusk over the grassland.")
    plan = plan_json(spec, env=FULL_SIZE)
    assert plan["gen:chase.wide#1"]["reason"].startswith("request changed")
    assert "input.prompt" in plan["gen:chase.wide#1"]["reason"]
    assert plan["gen:chase.hero#1"]["status"] == "cached"
    ran, done = run_json(spec, env=FULL_SIZE)
    assert ran == ["film:main", "frame:chase.wide#1:last", "gen:chase.pounce#1",
                   "gen:chase.wide#1", "scene:chase"]


def test_transition_change_reruns_only_assembly(project):
    spec = write_spec(project)
    run_json(spec)
    write_spec(project, transition="{type: crossfade, seconds: 0.5}")
    ran, _ = run_json(spec)
    assert ran == ["film:main"]


def test_deleted_object_regenerates_exactly_that_task(project):
    spec = write_spec(project)
    run_json(spec)
    store = Store(project / ".wanflow")
    victim = next(r for r in store.actions.all() if r.task == "gen:chase.hero#1")
    os.chmod(store.objects.path(victim.digest), 0o644)
    os.unlink(store.objects.path(victim.digest))
    assert plan_json(spec)["gen:chase.hero#1"]["reason"] == "output missing from the store"
    ran, _ = run_json(spec)
    # The preview is deterministic, so the regenerated clip has the same bytes and
    # everything downstream of it is still cached.
    assert ran == ["gen:chase.hero#1"]


def test_renamed_asset_with_same_content_regenerates_nothing(project):
    spec = write_spec(project)
    run_json(spec)
    os.rename(project / "media" / "hero.png", project / "media" / "hero-renamed.png")
    spec.write_text(spec.read_text().replace("media/hero.png", "media/hero-renamed.png"))
    ran, done = run_json(spec)
    assert ran == [] and done["generated"] == 0


def test_reformatted_yaml_changes_no_key(project):
    spec = write_spec(project)
    run_json(spec)
    text = spec.read_text().replace("  model: wan2.7-t2v\n  resolution: 720P\n",
                                    "  resolution: 720P   # reordered\n  model: wan2.7-t2v\n")
    spec.write_text("# a comment\n" + text)
    ran, _ = run_json(spec)
    assert ran == []


def test_only_runs_the_target_and_what_it_needs(project):
    spec = write_spec(project)
    ran, _ = run_json(spec, "--only", "chase.pounce")
    assert ran == ["frame:chase.wide#1:last", "gen:chase.pounce#1", "gen:chase.wide#1"]
    assert not (project / "renders" / "main.preview.mp4").exists()


def test_status_and_graph(project):
    spec = write_spec(project)
    proc = run_cli(["status", str(spec), "--backend", "preview", "--json"], check=0)
    report = json.loads(proc.stdout)
    assert report["totals"]["cached"] == 0 and report["totals"]["to_run"] > 0
    run_json(spec)
    report = json.loads(run_cli(["status", str(spec), "--backend", "preview", "--json"],
                                check=0).stdout)
    assert report["totals"]["to_run"] == 0
    assert all(o["up_to_date"] for o in report["outputs"])
    mermaid = run_cli(["graph", str(spec)], check=0).stdout
    assert mermaid.startswith("flowchart LR") and '"gen:chase.pounce#1"' in mermaid
    dot = run_cli(["graph", str(spec), "--format", "dot"], check=0).stdout
    assert dot.startswith("digraph") and "->" in dot


def test_budget_flags_on_a_paid_backend_stop_before_spending(project):
    spec = write_spec(project)
    env = {"DASHSCOPE_API_KEY": "sk-test", "DASHSCOPE_BASE_URL": "http://127.0.0.1:9"}
    proc = run_cli(["plan", str(spec), "--backend", "dashscope", "--region", "singapore",
                    "--max-cost", "0.01"],
                   env=env)
    assert proc.returncode == 3 and "exceeds --max-cost" in proc.stderr
    proc = run_cli(["run", str(spec), "--backend", "dashscope", "--no-spend"], env=env)
    assert proc.returncode == 3 and "no-spend" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cache_verify_and_gc(project):
    spec = write_spec(project)
    run_json(spec)
    proc = run_cli(["cache", "verify", str(spec), "--json"], check=0)
    assert json.loads(proc.stdout)["corrupt"] == []
    store = Store(project / ".wanflow")
    orphan = store.objects.put_bytes(b"not pinned by any lock file")
    report = json.loads(run_cli(["cache", "gc", str(spec), "--json"], check=0).stdout)
    assert orphan in report["objects"] and store.has(orphan)        # dry run
    pinned = {r.digest for r in store.actions.all() if r.task.startswith("film:")}
    assert not pinned & set(report["objects"])
    run_cli(["cache", "gc", str(spec), "--apply"], check=0)
    assert not store.has(orphan) and all(store.has(d) for d in pinned)


def test_report_page_shows_every_take_from_the_store(project):
    spec = write_spec(project)
    run_json(spec)
    out = project / "review"
    proc = run_cli(["report", str(spec), "--backend", "preview", "--out", str(out)], check=0)
    page = (out / "index.html").read_text()
    assert str(out / "index.html") in proc.stdout
    # Every take, the scene and the film play from copies beside the page, each beside a
    # strip of its first, middle and last frames; the two input images are shown too.
    assert page.count("<video ") == 5 and "(picked)" in page
    assert page.count("<img ") == 5 * 3 + 2
    assert len(list((out / "media").glob("*.mp4"))) == 5
    pngs = list(out.rglob("*.png"))
    assert len(pngs) == 5 * 3 + 2
    for png in pngs:
        assert media.image_size(str(png))[0] == 320
    data = json.loads(run_cli(["report", str(spec), "--json"], check=0).stdout)
    takes = [t for s in data["scenes"] for sh in s["shots"] for t in sh["takes"]]
    assert len(takes) == 3 and all(t["status"] == "cached" and t["output"] for t in takes)
    assert all(t["pick_command"] == f"wanflow pick {t['task'][4:-2]} 1 {spec}" for t in takes)
    pounce = data["scenes"][0]["shots"][1]
    assert pounce["inputs"][0]["source"] == "frame:chase.wide#1:last"
    assert data["totals"]["takes"] == 3 and data["totals"]["cached"] == 3


def test_scaled_previews_keep_timing_and_are_keyed_apart(project):
    """WANFLOW_PREVIEW_SCALE: clips and assemblies at a fraction of the model's size, with
    the same duration and frame rate; nothing of a scaled run passes for a full-size one."""
    spec = write_spec(project)
    run_json(spec, env={"WANFLOW_PREVIEW_SCALE": "0.25"})
    for out in ("renders/chase.preview.mp4", "renders/main.preview.mp4"):
        probe = media.probe(str(project / out))
        assert (probe.width, probe.height, probe.fps) == (320, 180, 30)
        assert probe.duration == pytest.approx(5.0, abs=0.05)   # 3 × 2 s, two 0.5 s fades
    with Store(project / ".wanflow") as store:
        gens = [r for r in store.actions.all() if r.task.startswith("gen:")]
    assert len(gens) == 3 and {r.meta["backend"] for r in gens} == {"preview/2@0.25"}
    assert all((r.meta["width"], r.meta["height"], r.meta["duration"]) == (320, 180, 2.0)
               for r in gens)
    full = plan_json(spec, env=FULL_SIZE)
    assert all(t["status"] != "cached" for tid, t in full.items()
               if not tid.startswith("asset:")), full


def test_previews_are_not_held_to_a_providers_quotas(project):
    """A preview is rendered here: the model's quota (5 tasks in flight, 2 submits a
    second) is the provider's, so eight takes of one shot never wait for a slot."""
    spec = project / "takes.yaml"
    spec.write_text("wanflow: 1\nname: takes\nscenes:\n  - id: s\n    shots:\n"
                    "      - {id: a, model: wan2.7-t2v, prompt: Gulls., duration: 2, takes: 8}\n")
    proc = run_cli(["run", str(spec), "--backend", "preview", "--json"], check=0)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sum(e["event"] == "finished" and e["task"].startswith("gen:") for e in events) == 8
    assert [e["task"] for e in events if e.get("state") == "waiting"] == []
