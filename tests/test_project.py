"""The parsed-spec cache never serves a spec whose inputs changed."""
import os
from pathlib import Path

import pytest

from wanflow.run import project


@pytest.fixture
def project_dir(tmp_path):
    (tmp_path / ".git").mkdir()
    return tmp_path

LIB = """\
wanflow: 1
templates:
  wide:
    params: [what]
    prompt: "Wide shot of ${what}."
    duration: 2
"""
SPEC = """\
wanflow: 1
name: cached
include: [lib.yaml]
defaults: {model: wan2.7-t2v, resolution: 720P, ratio: "16:9"}
scenes:
  - id: s
    shots:
      - {id: a, use: wide, with: {what: the harbour}}
films:
  - {id: f, path: out.mp4, scenes: [s]}
"""


def test_included_file_edit_is_seen(project_dir):
    (project_dir / "lib.yaml").write_text(LIB)
    (project_dir / "spec.yaml").write_text(SPEC)
    path = str(project_dir / "spec.yaml")
    spec = project_load(path)
    assert spec.scenes[0].shots[0].prompt == "Wide shot of the harbour."
    assert project_load(path) == spec                      # served from the record
    (project_dir / "lib.yaml").write_text(LIB.replace("Wide shot", "Aerial shot"))
    assert project_load(path).scenes[0].shots[0].prompt == "Aerial shot of the harbour."


def test_corrupt_record_falls_back_to_a_real_load(project_dir):
    (project_dir / "lib.yaml").write_text(LIB)
    (project_dir / "spec.yaml").write_text(SPEC)
    path = str(project_dir / "spec.yaml")
    project_load(path)
    records = list((project_dir / ".wanflow" / "specs").iterdir())
    assert len(records) == 1
    records[0].write_bytes(b"\x80\x05garbage")
    assert project_load(path).name == "cached"


def project_load(path):
    cwd = os.getcwd()
    try:
        os.chdir(os.path.dirname(path))
        return project.load_spec(path)
    finally:
        os.chdir(cwd)


def test_limits_merge_table_spec_environment_and_command_line():
    from wanflow.run import quotas
    from wanflow.settings import Settings as RunSettings
    from wanflow.spec.nodes import ModelLimit, Spec, SpecSettings

    spec = Spec(file="x", root="/", name="x", settings=SpecSettings(limits=(
        ModelLimit("wan2.7-t2v", concurrency=3),)))
    settings = RunSettings.resolve({"WANFLOW_LIMITS": "wan2.7-t2v=9:0.5"},
                                   limits=("wan2.7-t2v=4",))
    merged = quotas.merge(spec, settings.limits)
    assert merged["wan2.7-t2v"].concurrency == 4          # command line wins
    assert merged["wan2.7-t2v"].submit_rps == 0.5         # environment over the table
    only_spec = quotas.merge(spec, RunSettings.resolve({}).limits)
    assert only_spec["wan2.7-t2v"].concurrency == 3
    with pytest.raises(Exception, match="MODEL=CONCURRENCY"):
        quotas.merge(spec, ("wan2.7-t2v=lots",))


def test_code_stamp_covers_every_module_of_the_spec_package():
    spec_dir = Path(project.__file__).resolve().parent.parent / "spec"
    stamped = {name for name, *_ in project._code_stamp()}
    assert {f"spec/{p.name}" for p in spec_dir.glob("*.py")} <= stamped
    assert {"models.py", "schemas/wanflow.schema.json"} <= stamped
