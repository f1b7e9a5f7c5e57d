"""A library file (templates, vars, assets; no scenes) checked on its own."""
from __future__ import annotations

import json

from conftest import ROOT, run_cli

from wanflow import spec as spec_api

LIBRARY = ROOT / "examples" / "templates" / "library.yaml"


def test_the_example_library_validates_on_its_own_and_says_so():
    proc = run_cli(["validate", str(LIBRARY)], check=0)
    assert proc.stdout.strip().endswith(
        "ok: a library checked on its own: 3 templates, 2 vars, 2 assets, no scenes")
    loaded = spec_api.load(LIBRARY)
    assert loaded.library and loaded.templates == ("establishing", "push-in", "settle")
    data = json.loads(run_cli(["validate", "--json", str(LIBRARY)], check=0).stdout)
    assert data["ok"] and data["summary"]["library"] is True


def test_a_library_reports_its_own_problems(project):
    (project / "lib.yaml").write_text(
        "wanflow: 1\n"
        "vars: {place: harbor}\n"
        "assets: {gone: media/missing.wav}\n"
        "templates:\n"
        "  t:\n"
        "    params: [subject]\n"
        "    prompt: \"${subject} in ${place} by ${nowhere}\"\n"
        "    duration: 99\n")
    out = run_cli(["validate", str(project / "lib.yaml")], check=2).stdout
    assert "lib.yaml:3:16: error: asset 'gone': file not found" in out
    assert "unknown variable or template parameter 'nowhere'" in out
    assert "duration 99 is out of range" in out


def test_a_file_with_nothing_but_a_name_is_still_a_spec_without_scenes(project):
    (project / "empty.yaml").write_text("wanflow: 1\nname: empty\n")
    out = run_cli(["validate", str(project / "empty.yaml")], check=2).stdout
    assert "the spec has no scenes" in out


def test_a_library_cannot_be_run(project):
    proc = run_cli(["plan", str(LIBRARY)], check=2)
    assert "is a library" in proc.stderr and "include it from a spec" in proc.stderr


def test_vars_alone_do_not_make_a_library(project):
    (project / "vars.yaml").write_text("wanflow: 1\nname: v\nvars: {x: 1}\n")
    assert "the spec has no scenes" in run_cli(["validate", str(project / "vars.yaml")],
                                               check=2).stdout
