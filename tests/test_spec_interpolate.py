"""Variables: typed whole-string values, escapes, chains, and overrides across includes."""
from __future__ import annotations

import pytest
from spec_files import add_media, write

from wanflow.spec import load


@pytest.fixture
def project(project):
    """The project (it holds `.git`) with a still and a driving-audio file under `media/`."""
    return add_media(project)


def test_vars_typed_escaped_and_chained(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
vars:
  secs: 6
  animal: cheetah
  title: the ${animal} run
scenes:
  - id: a
    shots:
      - id: x
        model: wan2.7-t2v
        duration: ${secs}
        prompt: "${title}; costs $${price} and ${secs} s"
""")
    shot = load(spec).shot("a.x")
    assert shot.duration == 6
    assert shot.prompt == "the cheetah run; costs ${price} and 6 s"


def test_include_vars_are_overridden_and_diamond_includes_load_once(project):
    write(project / "lib" / "base.yaml", "wanflow: 1\nname: base\nvars: {who: fox, where: wood}\n")
    write(project / "lib" / "left.yaml", "wanflow: 1\nname: left\ninclude: [base.yaml]\n"
                                         "assets: {still: ../media/still.png}\n")
    write(project / "lib" / "right.yaml", "wanflow: 1\nname: right\ninclude: [base.yaml]\n"
                                          "defaults: {model: wan2.7-t2v, duration: 3}\n")
    spec = write(project / "specs" / "s.yaml", """\
wanflow: 1
name: s
include: [../lib/left.yaml, ../lib/right.yaml]
vars: {who: hare}
defaults: {duration: 4}
scenes:
  - id: a
    shots: [{id: x, prompt: "${who} in the ${where}"}]
""")
    loaded = load(spec)
    shot = loaded.shot("a.x")
    assert shot.prompt == "hare in the wood"
    assert shot.model == "wan2.7-t2v" and shot.duration == 4
    assert len(loaded.files) == 4
    assert loaded.assets["still"].file == str(project / "media" / "still.png")
