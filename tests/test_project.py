"""The parsed-spec cache never serves a spec whose inputs changed."""
import os
from pathlib import Path

import pytest
from conftest import run_cli

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


def project_load(path, state_dir=None):
    """Load through the parsed-spec cache, signing with a key kept beside the project (a
    stand-in for the user's data folder)."""
    cwd = os.getcwd()
    state = state_dir or os.path.join(os.path.dirname(path), ".machine")
    try:
        os.chdir(os.path.dirname(path))
        return project.load_spec(path, None, state)
    finally:
        os.chdir(cwd)


def _resign(record: Path, signed: bytes, state_dir: Path) -> None:
    import hashlib
    import hmac

    key = (state_dir / "spec-cache.key").read_bytes()
    record.write_bytes(hmac.new(key, signed, hashlib.sha256).hexdigest().encode() + b"\n"
                       + signed)


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


# --------------------------------------------------------------------------- a hostile cache

class _Payload:
    """What a planted pickle would run when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_or_malformed_record_is_ignored_and_nothing_runs(project_dir):
    import pickle

    (project_dir / "lib.yaml").write_text(LIB)
    (project_dir / "spec.yaml").write_text(SPEC)
    marker = project_dir / "PWNED"
    evil = pickle.dumps(_Payload(marker))
    cwd = os.getcwd()
    try:
        os.chdir(project_dir)
        record = Path(project._spec_cache_path("spec.yaml", None))
    finally:
        os.chdir(cwd)
    record.parent.mkdir(parents=True)
    plants = [evil, b'["x"]\n' + evil, b"{not json\n{}", b"[" * 100_000 + b"\n",
              b'[1, 2, [], []]\n{"format": 1, "spec": {}}', b"\xff\xfe\x00garbage"]
    for plant in plants:
        record.write_bytes(plant)
        record.with_suffix(".pickle").write_bytes(evil)       # where the old cache kept it
        # In this process: a record that were unpickled would run its payload here.
        proc = run_cli(["status", "spec.yaml", "--backend", "preview"], cwd=project_dir)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not marker.exists()
        assert "Traceback" not in proc.stderr
    assert not marker.exists()


def test_a_well_formed_record_is_still_checked_like_input(project_dir):
    import json

    (project_dir / "lib.yaml").write_text(LIB)
    (project_dir / "spec.yaml").write_text(SPEC)
    path = str(project_dir / "spec.yaml")
    real = project_load(path)
    record = next((project_dir / ".wanflow" / "specs").iterdir())
    _, head, body = record.read_text().split("\n", 2)

    def plant(change):   # signed with this machine's key: only the codec's checks stand
        data = json.loads(body)
        change(data["spec"])
        signed = head + "\n" + json.dumps({"format": 1, "spec": data["spec"]})
        _resign(record, signed.encode(), project_dir / ".machine")
        return project_load(path)

    def bad_type(spec):
        spec["scenes"][0]["shots"][0]["takes"] = "10"
    assert plant(bad_type) == real

    def unknown_field(spec):
        spec["scenes"][0]["shots"][0]["command"] = "rm -rf /"
    assert plant(unknown_field) == real

    def bool_for_int(spec):
        spec["scenes"][0]["shots"][0]["takes"] = True
    assert plant(bool_for_int) == real

    def output_outside(spec):   # a fingerprint that matches does not vouch for the contents
        spec["films"][0]["path"] = "../../escaped.mp4"
    assert plant(output_outside) == real


def test_a_record_this_machine_did_not_sign_is_a_miss(project_dir, tmp_path_factory):
    """A cache restored from elsewhere may hold a record that matches the fingerprint but
    says something else (more takes: more money). Records are signed with a key that never
    leaves the machine, so a record written anywhere else is not used."""
    import json

    (project_dir / "lib.yaml").write_text(LIB)
    (project_dir / "spec.yaml").write_text(SPEC)
    path = str(project_dir / "spec.yaml")
    real = project_load(path)
    record = next((project_dir / ".wanflow" / "specs").iterdir())
    _, head, body = record.read_text().split("\n", 2)
    data = json.loads(body)
    data["spec"]["scenes"][0]["shots"][0]["takes"] = 50
    other = tmp_path_factory.mktemp("other-machine")
    project_load(path, str(other))                      # makes that machine's key
    _resign(record, (head + "\n" + json.dumps(data)).encode(), other)
    forged = record.read_bytes()
    # Well-formed and current: the machine that signed it would use it...
    assert project_load(path, str(other)).scenes[0].shots[0].takes == 50
    record.write_bytes(forged)
    assert project_load(path) == real                   # ...this one does not


def test_a_symlink_that_appears_after_the_spec_was_cached_is_refused(project_dir, tmp_path_factory):
    from wanflow.errors import SpecError

    (project_dir / "lib.yaml").write_text(LIB)
    (project_dir / "spec.yaml").write_text(SPEC)
    path = str(project_dir / "spec.yaml")
    project_load(path)                                   # the record is written
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.symlink(elsewhere / "out.mp4", project_dir / "out.mp4")
    with pytest.raises(SpecError, match="leads outside the project through a symlink"):
        project_load(path)


def test_no_module_of_wanflow_can_unpickle():
    import ast

    package = Path(project.__file__).resolve().parent.parent
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("pickle", "marshal", "shelve", "dill"), source
