"""The spec package's public surface: `load` end to end (includes, templates, continuity,
positions, sorted diagnostics, warnings), the summary, the project root, and import cost."""
from __future__ import annotations

import re
import subprocess
import sys

from spec_files import ROOT, errors_of, write

from wanflow.spec import load, summary, summary_line
from wanflow.spec.nodes import Input, ShotRef
from wanflow.spec.paths import project_root

# --------------------------------------------------------------- the film example


def test_film_example_resolves_includes_templates_and_continuity():
    spec = load(ROOT / "examples" / "film" / "wanflow.yaml")
    assert spec.name == "harbor-morning"
    assert spec.root == str(ROOT / "examples")          # the .wanflow-root marker
    assert spec.files[0] == str(ROOT / "examples" / "film" / "wanflow.yaml")
    assert spec.files[1] == str(ROOT / "examples" / "templates" / "library.yaml")
    assert [s.id for s in spec.scenes] == ["arrival", "market"]
    wide, deck, moor = spec.scenes[0].shots
    # template + with + vars; the including spec's `look` overrides the library's
    assert wide.template == "establishing"
    assert wide.prompt.startswith("Extreme wide shot of a small fishing harbor: a blue wooden "
                                  "fishing boat chugs in past the breakwater.")
    assert wide.prompt.endswith("muted colours.")
    assert (wide.model, wide.resolution) == ("wan2.7-t2v", "720P")
    assert (wide.ratio, wide.duration) == ("16:9", 5)
    assert wide.prompt_extend is False and wide.watermark is False      # library defaults
    # template default parameter, template model, continuity from the previous shot
    assert deck.prompt.startswith("The camera pushes in slowly on the fisherman")
    assert deck.model == "wan2.7-i2v" and (deck.takes, deck.pick) == (3, 2)
    assert deck.inputs == (Input("first_frame", ref=ShotRef("arrival.wide", "last")),)
    # kf2v: first frame from a shot, last frame from a library asset
    assert moor.model == "wan2.2-kf2v-flash"
    assert moor.inputs == (Input("first_frame", ref=ShotRef("arrival.deck", "last")),
                           Input("last_frame", asset="harbor-dawn"))
    stalls, vendor = spec.scenes[1].shots
    assert stalls.needs == ("arrival.moor",)
    assert vendor.inputs == (Input("first_clip", ref=ShotRef("market.stalls", None)),)
    assert vendor.path == "renders/vendor.mp4"
    arrival = spec.scenes[0]
    audio = arrival.audio
    assert audio.asset == "score" and audio.volume == 0.8 and audio.duck == 0.35
    assert (arrival.transition.type, arrival.transition.seconds) == ("crossfade", 0.5)
    assert spec.films[0].transition.seconds == 0.75
    hero = spec.assets["harbor-dawn"]
    assert hero.file == str(ROOT / "examples" / "media" / "harbor-dawn.png")
    assert hero.where.file.endswith("templates/library.yaml")
    assert hero.where.path == "$.assets.harbor-dawn"
    assert spec.settings.max_cost is None and spec.settings.backend == "auto"
    assert spec.warnings == ()


def test_where_points_at_the_shot_mapping():
    spec = load(str(ROOT / "examples" / "film" / "wanflow.yaml"))
    deck = spec.shot("arrival.deck")
    text = (ROOT / "examples" / "film" / "wanflow.yaml").read_text().splitlines()
    assert text[deck.where.line - 1][deck.where.col - 1:].startswith("id: deck")
    assert deck.where.path == "$.scenes[0].shots[1]"
    assert spec.scenes[1].where.path == "$.scenes[1]"


def test_summary():
    spec = load(ROOT / "examples" / "film" / "wanflow.yaml")
    s = summary(spec)
    assert (s["scenes"], s["shots"], s["takes"], s["films"]) == (2, 5, 7, 1)
    assert s["seconds"] == 5 + 4 + 5 + 5 + 4
    assert s["generated_seconds"] == 5 + 4 * 3 + 5 + 5 + 4
    assert s["models"] == ["wan2.2-kf2v-flash", "wan2.7-i2v", "wan2.7-t2v"]
    assert summary_line(spec) == "2 scenes, 5 shots (7 takes), 1 film, 23 s of video"


# --------------------------------------------------------------- errors and warnings


def test_spec_error_carries_warnings_and_sorted_errors(project):
    spec = write(project / "s.yaml", f"""\
wanflow: 1
name: s
scenes:
  - id: a
    shots:
      - {{id: x, model: wan2.2-t2v-plus, prompt: "{'a' * 900}", duration: 10}}
      - {{id: y, model: nope, prompt: p}}
""")
    diags = errors_of(spec)
    severities = [d.severity for d in diags]
    assert "warning" in severities and severities.count("error") == 2
    assert [d.where.line for d in diags] == sorted(d.where.line for d in diags)
    warning = next(d for d in diags if d.severity == "warning" and "truncates" in d.message)
    assert "silently truncates prompts over 800 characters for wan2.2-t2v-plus" in warning.message
    assert str(warning).startswith(f"{spec}:6:")


def test_warnings_on_success(project):
    spec = write(project / "s.yaml", f"""\
wanflow: 1
name: s
scenes:
  - id: a
    shots: [{{id: x, model: wan2.7-t2v, prompt: "{'b' * 5001}"}}]
""")
    loaded = load(spec)
    assert len(loaded.warnings) == 1 and loaded.warnings[0].severity == "warning"


def test_project_root(tmp_path):
    spec = write(tmp_path / "deep" / "er" / "s.yaml", "wanflow: 1\nname: s\n")
    assert project_root(str(spec.parent)) == str(spec.parent)
    (tmp_path / ".git").mkdir()
    assert project_root(str(spec.parent)) == str(tmp_path)
    (tmp_path / "deep" / ".wanflow-root").write_text("")
    assert project_root(str(spec.parent)) == str(tmp_path / "deep")


def test_assets_may_not_escape_the_project_even_through_includes(project):
    write(project / "lib" / "lib.yaml",
          "wanflow: 1\nname: lib\nassets: {pw: ../../../etc/x.png}\n")
    spec = write(project / "s.yaml",
                 "wanflow: 1\nname: s\ninclude: [lib/lib.yaml]\nscenes:\n"
                 "  - id: a\n    shots: [{id: x, model: wan2.7-t2v, prompt: p}]\n")
    (diag,) = errors_of(spec)
    assert diag.where.file.endswith("lib/lib.yaml") and diag.where.path == "$.assets.pw"
    assert "leaves the project directory" in diag.message


def test_snapshot_models_are_accepted(project):
    spec = write(project / "s.yaml",
                 "wanflow: 1\nname: s\nscenes:\n  - id: a\n    shots:\n"
                 "      - {id: x, model: wan2.7-t2v-2026-06-12, prompt: p, duration: 15}\n")
    assert load(spec).shot("a.x").model == "wan2.7-t2v-2026-06-12"


# --------------------------------------------------------------- import cost and library boundaries


def test_importing_the_package_or_its_nodes_loads_no_parser():
    """The no-op run path imports `wanflow.spec.nodes`; it must not pay for yaml or jsonschema."""
    code = ("import sys, wanflow.spec, wanflow.spec.nodes; "
            "print(sorted(m for m in ('yaml', 'jsonschema') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.strip() == "[]"


def test_only_one_module_imports_yaml_and_one_jsonschema():
    owner = {"yaml": "spec/yaml.py", "jsonschema": "spec/schema.py"}
    for path in (ROOT / "wanflow").rglob("*.py"):
        name = path.relative_to(ROOT / "wanflow").as_posix()
        text = path.read_text("utf-8")
        for library, module in owner.items():
            if name != module:
                assert not re.search(rf"^\s*(import|from)\s+{library}\b", text, re.MULTILINE), name
