"""Reading a spec file: YAML 1.2 core scalars, merge keys and aliases, duplicate keys, and
positions that follow an alias to its anchor. Hostile input is in test_spec_validate.py."""
from __future__ import annotations

from spec_files import errors_of, write

from wanflow.spec import load
from wanflow.spec.yaml import core_scalar


def test_yaml_12_scalars(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
vars: {word: yes, hex: 0x10, nothing_here: "~"}
scenes:
  - id: a
    shots:
      - id: x
        model: wan2.7-t2v
        ratio: 16:9            # a string, not sexagesimal 969
        seed: !!int "42"
        prompt: ${word} ${hex} ${nothing_here}
""")
    shot = load(spec).shot("a.x")
    assert shot.ratio == "16:9" and shot.seed == 42
    assert shot.prompt == "yes 16 ~"


def test_core_scalars():
    assert core_scalar("yes") == "yes" and core_scalar("16:9") == "16:9"
    assert core_scalar("~") is None and core_scalar("True") is True
    assert core_scalar("0o17") == 15 and core_scalar("0x10") == 16 and core_scalar("1e3") == 1000.0
    assert core_scalar("9" * 41) == "9" * 41   # no huge integers from a plain scalar


def test_merge_keys_and_aliases(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
scenes:
  - id: a
    shots:
      - &base
        id: x
        model: wan2.7-t2v
        prompt: base prompt
        duration: 4
      - <<: *base
        id: y
        duration: 6
""")
    loaded = load(spec)
    _x, y = loaded.scenes[0].shots
    assert (y.prompt, y.duration, y.model) == ("base prompt", 6, "wan2.7-t2v")


def test_duplicate_keys_are_all_reported_with_the_other_errors(project):
    spec = write(project / "s.yaml", "wanflow: 1\nname: a\nname: b\nvars: {x: 1, x: 2}\n")
    diags = errors_of(spec)
    assert [(d.where.line, d.where.col) for d in diags] == [(1, 1), (3, 1), (4, 14)]
    assert "the spec has no scenes" in diags[0].message
    assert all("duplicate key" in d.message for d in diags[1:])


def test_alias_errors_point_at_the_alias(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
defaults: &d {model: wan2.7-t2v, duration: 40}
templates:
  t: *d
scenes:
  - id: a
    shots: [{id: x, prompt: p}]
""")
    lines = {(d.where.line, d.where.path) for d in errors_of(spec)}
    assert (3, "$.defaults.duration") in lines
    assert (3, "$.templates.t.duration") in lines   # the anchored node, reached by the alias
