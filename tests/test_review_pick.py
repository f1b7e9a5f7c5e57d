"""`wanflow pick`: `pick:` set in place, nothing else in the file touched."""
import json

import pytest
from conftest import run_cli
from spec_files import write

SPEC = """\
# a comment that must survive
wanflow: 1
name: picks
include: [lib.yaml]
defaults: {model: wan2.7-t2v, resolution: 720P, ratio: "16:9", prompt_extend: false}
scenes:
  - id: s
    shots:
      - id: a                 # the shot with takes
        prompt: "A gull lands."   # keep me
        duration: 2
        takes: 3              # three variants
      - {id: b, prompt: "Waves.", duration: 2, takes: 2}
      - id: c
        prompt: "Nets."
        duration: 2
        takes: 2
        pick: 2               # the second
      - id: d
        use: library
films:
  - id: f
    path: renders/f.mp4
    scenes: [s]
"""
LIB = """\
wanflow: 1
name: lib
templates:
  library:
    prompt: "Boats."
    duration: 2
    takes: 2
    pick: 1
"""


@pytest.fixture
def spec(project):
    write(project / "lib.yaml", LIB)
    return write(project / "picks.yaml", SPEC)


def test_pick_edits_only_the_pick(spec):
    run_cli(["pick", "s.c", "1", str(spec)], check=0)
    assert spec.read_text() == SPEC.replace("pick: 2               # the second",
                                            "pick: 1               # the second")
    run_cli(["pick", "s.a", "3", str(spec)], check=0)      # a `pick:` line after `takes:`
    run_cli(["pick", "s.b", "2", str(spec)], check=0)      # inside a flow mapping
    expected = SPEC.replace("pick: 2               # the second",
                            "pick: 1               # the second")
    expected = expected.replace("        takes: 3              # three variants\n",
                                "        takes: 3              # three variants\n"
                                "        pick: 3\n")
    expected = expected.replace("takes: 2}", "takes: 2, pick: 2}")
    assert spec.read_text() == expected
    proc = run_cli(["pick", "s.a", "3", str(spec)], check=0)
    assert "already picked" in proc.stdout


def test_pick_from_a_template_in_an_included_file_is_refused_with_where_to_edit(spec):
    before = spec.read_bytes()
    proc = run_cli(["pick", "s.d", "2", str(spec)], check=2)
    assert "lib.yaml:8:" in proc.stderr and "template 'library'" in proc.stderr
    assert spec.read_bytes() == before
    proc = run_cli(["pick", "s.a", "4", str(spec)], check=2)
    assert "pick one of 1 to 3" in proc.stderr
    proc = run_cli(["pick", "s.zz", "1", str(spec)], check=2)
    assert "no shot s.zz" in proc.stderr


def test_pick_keeps_crlf_line_endings(project):
    crlf = SPEC.replace("include: [lib.yaml]\n", "").replace("      - id: d\n        use: "
                                                           "library\n", "")
    path = project / "crlf.yaml"
    path.write_bytes(crlf.replace("\n", "\r\n").encode())
    run_cli(["pick", "s.a", "2", str(path)], check=0)
    data = path.read_bytes()
    assert b"        takes: 3              # three variants\r\n        pick: 2\r\n" in data
    assert data.count(b"\r\n") == data.count(b"\n")


def test_round_trip_pick_validate_then_only_reassembly_runs(spec):
    run_cli(["run", str(spec), "--backend", "preview"], check=0)
    run_cli(["pick", "s.a", "2", str(spec)], check=0)
    run_cli(["validate", str(spec)], check=0)
    plan = json.loads(run_cli(["plan", str(spec), "--json"], check=0).stdout)
    to_run = sorted(t["task"] for t in plan["tasks"] if t["status"] != "cached")
    assert to_run == ["film:f", "scene:s"]


def test_the_file_is_put_back_when_the_edited_spec_does_not_load(spec, monkeypatch):
    import wanflow.spec
    from wanflow.errors import SpecError
    from wanflow.review import pick

    before = spec.read_bytes()
    real, calls = wanflow.spec.load, []

    def load_then_fail(path):
        calls.append(path)
        if len(calls) > 1:
            raise SpecError(["picks.yaml:1:1: error: broken [at $]"])
        return real(path)

    monkeypatch.setattr(wanflow.spec, "load", load_then_fail)
    with pytest.raises(SpecError):
        pick.pick(str(spec), "s.a", 2)
    assert spec.read_bytes() == before
