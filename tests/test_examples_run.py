"""Every example runs end to end: offline on preview, and over HTTP against the emulator."""
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, run_process
from example_runs import paid_run

from wanflow import media


def example_specs():
    out = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        rel = path.relative_to(ROOT / "examples")
        if rel.parts[0] in ("ci", "templates") or "scenes:" not in path.read_text():
            continue
        out.append(rel)
    return out


SPECS = example_specs()


@pytest.fixture
def examples(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns(".wanflow", "renders", "*.lock"))
    return tmp_path / "examples"


def outputs_of(spec: Path, paid: bool):
    """The film and scene paths a run writes (read back from its plan): the spec's own
    paths for paid work, their `.preview` siblings for preview work."""
    from wanflow.plan import planner
    from wanflow.plan.tasks import render_path
    from wanflow.run import project

    proj = project.open_project(str(spec))
    plan = planner.build(proj.spec, "x")
    return [spec.parent / render_path(t.path, paid) for t in plan.tasks.values()
            if t.path and t.kind in ("scene", "film")]


def test_there_are_examples():
    assert len(SPECS) >= 7


@pytest.mark.parametrize("rel", SPECS, ids=str)
def test_example_runs_on_preview(examples, rel):
    spec = examples / rel
    run_cli(["run", str(spec), "--backend", "preview"], check=0)
    outs = outputs_of(spec, paid=False)
    assert outs, "every example should name a film path"
    for out in outs:
        probe = media.probe(str(out))
        assert probe.video_codec == "h264" and probe.duration > 1
    proc = run_cli(["run", str(spec), "--backend", "preview", "--json"], check=0)
    assert '"generated": 0' in proc.stdout


def test_readme_film_run_in_a_process_of_its_own(examples):
    """The README's main job as a user types it: the installed `wanflow` command."""
    spec = examples / "film" / "wanflow.yaml"
    proc = run_process(["run", spec, "--backend", "preview"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "0 failed" in proc.stderr
    for out in outputs_of(spec, paid=False):
        assert media.probe(str(out)).video_codec == "h264"


def long_for_the_emulator(rel):
    """The film (generations in a chain and full-size crossfades on the paid path) and the
    Wan 3.0 example (a 25 s shot and a chain through an edit, assembled at full size)."""
    return pytest.param(rel, marks=pytest.mark.slow) if rel.parts[0] in ("film", "wan3") \
        else rel


@pytest.mark.parametrize("rel", [long_for_the_emulator(rel) for rel in SPECS], ids=str)
def test_example_runs_against_the_emulator(tmp_path_factory, rel):
    run = paid_run(tmp_path_factory, rel.as_posix())   # test_wan3.py reads it too
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.submissions, "the run should have submitted generations"
    bad = [r for r in run.requests if r["status"] and r["status"] >= 400]
    assert not bad, bad[:3]
    for out in outputs_of(run.spec, paid=True):
        assert media.probe(str(out)).video_codec == "h264"
