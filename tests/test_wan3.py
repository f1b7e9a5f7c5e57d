"""Wan 3.0 and wan2.7-videoedit end to end: the Wan 3.0 example on preview and through the
emulator (continuity through an edit, lengths the model chooses, what is billed and
locked), the "up to" wording of the plan, and the refusals that come before any spend."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROOT, run_cli
from example_runs import paid_run

from wanflow import media
from wanflow.backends.emulator import Emulator
from wanflow.store import lockfile

KEY = {"DASHSCOPE_API_KEY": "sk-test"}


@pytest.fixture
def example(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns(".wanflow", "renders", "*.lock"))
    return tmp_path / "examples" / "wan3" / "lighthouse-keeper.yaml"


def test_plan_budgets_a_length_the_model_chooses_at_its_longest(example):
    text = run_cli(["plan", str(example)], check=0).stdout
    dawn = next(line for line in text.splitlines() if line.startswith("gen:storm.dawn#1"))
    assert "≤ 30.0" in dawn and "(up to 30 s: the model chooses the length)" in dawn
    assert "up to 79.0 billed s" in text
    # no official price: the plan says so and labels what third parties quote
    assert "price unknown" in dawn
    assert "wan3.0-video: no official price; indicative only" in text
    report = json.loads(run_cli(["plan", str(example), "--json"], check=0).stdout)
    tasks = {t["task"]: t for t in report["tasks"]}
    assert tasks["gen:storm.dawn#1"]["up_to"] and tasks["gen:storm.dawn#1"]["billed_seconds"] == 30
    assert not tasks["gen:storm.watch#1"]["up_to"] and report["totals"]["up_to"]
    # the edit bills its source's seconds with its own (⚠ possibly billed)
    assert tasks["gen:storm.ink#1"]["billed_seconds"] == 12


def test_continuity_through_an_edit_on_preview(example):
    run_cli(["run", str(example), "--backend", "preview"], check=0)
    lock = lockfile.read(example.with_name("lighthouse-keeper.preview.lock"))
    # the edit restyles the picked take (#2) and keeps its length (`duration: source`)
    assert lock["gen:storm.ink#1"].duration == lock["gen:storm.lamp#2"].duration == 6.0
    # the last shot starts on the edited clip's last frame
    assert "frame:storm.ink#1:last" in lock
    film = example.parent / "renders" / "lighthouse-keeper.preview.mp4"
    assert media.probe(str(film)).duration == pytest.approx(25 + 6 + 6 + 5, abs=0.2)


def test_the_example_through_the_emulator(tmp_path_factory):
    # The run of test_examples_run.py's test of every example through the emulator.
    run = paid_run(tmp_path_factory, "wan3/lighthouse-keeper.yaml")
    assert run.returncode == 0, run.stderr[-2000:]
    bodies = {s["body"]["input"]["prompt"].split()[0]: s["body"] for s in run.submissions}
    lock = lockfile.read(run.spec.with_name("lighthouse-keeper.lock"))
    dawn, ink, watch = lock["gen:storm.dawn#1"], lock["gen:storm.ink#1"], lock["gen:storm.watch#1"]
    # `duration: auto` went as -1; the emulator chose 8 s, and the lock and the bill say so
    assert bodies["The"]["parameters"]["duration"] == -1
    assert dawn.duration == pytest.approx(8.0, abs=0.1) and dawn.billed_seconds == 8
    # the edit went with its source (uploaded as .mp4), 0 for `source`; input seconds billed
    media_items = bodies["Repaint"]["input"]["media"]
    assert media_items[0]["type"] == "video" and media_items[0]["url"].endswith(".mp4")
    assert bodies["Repaint"]["parameters"]["duration"] == 0
    assert ink.billed_seconds == pytest.approx(12.0, abs=0.2)
    # the exact model ids sent are recorded; the voice went as a reference, kept as .wav
    assert (watch.model, ink.model, dawn.model) == ("wan3.0-video-prime", "wan2.7-videoedit",
                                                    "wan3.0-video")
    voice = [m for m in bodies["Mira"]["input"]["media"] if m["type"] == "reference_audio"]
    assert voice and voice[0]["url"].endswith(".wav")
    assert watch.duration == pytest.approx(25.0, abs=0.1)


def test_paid_wan3_without_a_workspace_stops_before_any_spend(example):
    proc = run_cli(["run", str(example), "--backend", "dashscope"], env=KEY)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--workspace" in proc.stderr and "nothing was submitted" in proc.stderr
    assert "workspace hosts only" in proc.stderr
    assert not example.with_name("lighthouse-keeper.lock").exists()
    # the preview never asks for one
    run_cli(["run", str(example), "--only", "storm.watch"], check=0)


def test_local_audio_where_nothing_can_be_uploaded_stops_before_any_spend(example):
    """Singapore has no temporary storage: the voice clip would need an https URL."""
    with Emulator(latency=(0.1, 0.2), region="singapore", render_scale=0.25) as emu:
        proc = run_cli(["run", str(example), "--backend", "dashscope", "--region", "singapore",
                        "--base-url", emu.base_url], env=KEY)
        assert proc.returncode == 4, proc.stdout + proc.stderr
        assert "asset 'voice'" in proc.stderr and "https URL" in proc.stderr
        assert emu.submissions() == [] and emu.objects() == {}


def test_an_edit_of_a_clip_whose_length_the_model_chose(project):
    """Downstream work reads the real length from the output: once `a` exists, the edit's
    estimate is exact, and its clip is as long as the one the model chose."""
    (project / "s.yaml").write_text("""\
wanflow: 1
name: s
settings: {accept_status: [preview]}
scenes:
  - id: a
    shots:
      - {id: a, model: wan3.0-video, prompt: a gull, resolution: 480P, duration: auto}
      - {id: b, model: wan2.7-videoedit, prompt: ink, resolution: 720P, source: {shot: a}}
films:
  - {id: f, path: renders/f.mp4, scenes: [a]}
""")
    spec = str(project / "s.yaml")
    warned = run_cli(["validate", spec], check=0).stdout
    assert "the model of 'a.a' chooses its length" in warned
    with Emulator(latency=(0.1, 0.2), render_scale=0.25) as emu:
        flags = ["--backend", "dashscope", "--base-url", emu.base_url, "--json"]
        before = json.loads(run_cli(["plan", spec, *flags], env=KEY, check=0).stdout)
        assert {t["task"]: t["up_to"] for t in before["tasks"]}["gen:a.b#1"]
        run_cli(["run", spec, *flags[:-1], "--only", "a.a"], env=KEY, check=0)
        after = json.loads(run_cli(["plan", spec, *flags], env=KEY, check=0).stdout)
        edit = {t["task"]: t for t in after["tasks"]}["gen:a.b#1"]
        assert not edit["up_to"] and edit["billed_seconds"] == pytest.approx(16.0, abs=0.2)
        run_cli(["run", spec, *flags[:-1]], env=KEY, check=0)
    lock = lockfile.read(project / "s.lock")
    assert lock["gen:a.b#1"].duration == pytest.approx(lock["gen:a.a#1"].duration, abs=0.1)
    assert lock["gen:a.a#1"].duration == pytest.approx(8.0, abs=0.1)
