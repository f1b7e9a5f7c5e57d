"""The loader: YAML with positions, includes, vars, templates, defaults → the resolved Spec;
the schema as the single source of structural rules; the pure semantic checks."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from wanflow import models

from wanflow.spec import checks

from wanflow.spec import loader

from wanflow.plan import request
from wanflow.errors import SpecError
from wanflow.spec.nodes import Input, ShotRef, Where

ROOT = Path(__file__).resolve().parent.parent
MEDIA = Path(__file__).resolve().parent / "specs" / "media"


@pytest.fixture
def project(tmp_path):
    """A project root (holds `.git`) with a still and a driving-audio file."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "still.png").write_bytes((MEDIA / "still.png").read_bytes())
    (tmp_path / "media" / "voice.wav").write_bytes(
        (ROOT / "examples" / "media" / "cat-verse.wav").read_bytes())
    return tmp_path


@pytest.fixture
def clip(project):
    """A short real MP4 in the project (reference videos are decoded and checked)."""
    from wanflow import media

    media.render_preview(media.PreviewCard("a", "b", 1, "p", 2.5, 160, 96, 8),
                         str(project / "media" / "ref.mp4"))
    return project / "media" / "ref.mp4"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def errors_of(path) -> list:
    with pytest.raises(SpecError) as info:
        loader.load(path)
    return info.value.diagnostics


# --------------------------------------------------------------------------- the film example

def test_film_example_resolves_includes_templates_and_continuity():
    spec = loader.load(ROOT / "examples" / "film" / "wanflow.yaml")
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
    assert (wide.model, wide.resolution, wide.ratio, wide.duration) == ("wan2.7-t2v", "720P", "16:9", 5)
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
    assert arrival.audio.asset == "score" and arrival.audio.volume == 0.8 and arrival.audio.duck == 0.35
    assert (arrival.transition.type, arrival.transition.seconds) == ("crossfade", 0.5)
    assert spec.films[0].transition.seconds == 0.75
    hero = spec.assets["harbor-dawn"]
    assert hero.file == str(ROOT / "examples" / "media" / "harbor-dawn.png")
    assert hero.where.file.endswith("templates/library.yaml") and hero.where.path == "$.assets.harbor-dawn"
    assert spec.settings.max_cost == 5.0 and spec.settings.backend == "auto"
    assert spec.warnings == ()


def test_where_points_at_the_shot_mapping():
    spec = loader.load(str(ROOT / "examples" / "film" / "wanflow.yaml"))
    deck = spec.shot("arrival.deck")
    text = (ROOT / "examples" / "film" / "wanflow.yaml").read_text().splitlines()
    assert text[deck.where.line - 1][deck.where.col - 1:].startswith("id: deck")
    assert deck.where.path == "$.scenes[0].shots[1]"
    assert spec.scenes[1].where.path == "$.scenes[1]"


def test_summary():
    spec = loader.load(ROOT / "examples" / "film" / "wanflow.yaml")
    s = loader.summary(spec)
    assert (s["scenes"], s["shots"], s["takes"], s["films"]) == (2, 5, 7, 1)
    assert s["seconds"] == 5 + 4 + 5 + 5 + 4
    assert s["generated_seconds"] == 5 + 4 * 3 + 5 + 5 + 4
    assert s["models"] == ["wan2.2-kf2v-flash", "wan2.7-i2v", "wan2.7-t2v"]
    assert loader.summary_line(spec) == "2 scenes, 5 shots (7 takes), 1 film, 23 s of video"


# --------------------------------------------------------------------------- YAML reading

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
    shot = loader.load(spec).shot("a.x")
    assert shot.ratio == "16:9" and shot.seed == 42
    assert shot.prompt == "yes 16 ~"


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
    loaded = loader.load(spec)
    x, y = loaded.scenes[0].shots
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
defaults: &d {model: wan2.7-t2v, duration: 30}
templates:
  t: *d
scenes:
  - id: a
    shots: [{id: x, prompt: p}]
""")
    lines = {(d.where.line, d.where.path) for d in errors_of(spec)}
    assert (3, "$.defaults.duration") in lines
    assert (3, "$.templates.t.duration") in lines   # the anchored node, reached by the alias


# --------------------------------------------------------------------------- vars

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
    shot = loader.load(spec).shot("a.x")
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
    loaded = loader.load(spec)
    shot = loaded.shot("a.x")
    assert shot.prompt == "hare in the wood"
    assert shot.model == "wan2.7-t2v" and shot.duration == 4
    assert len(loaded.files) == 4
    assert loaded.assets["still"].file == str(project / "media" / "still.png")


# --------------------------------------------------------------------------- templates and layers

def test_template_layers_and_origin_in_messages(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
defaults: {model: wan2.7-t2v, duration: 5, resolution: 720P}
templates:
  move:
    params: {direction: null, speed: slowly}
    prompt: "Track ${direction}, ${speed}."
    duration: 3
    model: wan2.2-t2v-plus
scenes:
  - id: a
    shots:
      - {id: x, use: move, with: {direction: left}}
""")
    diags = errors_of(spec)
    messages = [d.message for d in diags]
    assert any("duration 3 s is not offered by wan2.2-t2v-plus (from template 'move')" in m
               for m in messages), messages
    dur = next(d for d in diags if "duration 3" in d.message)
    assert (dur.where.line, dur.where.path) == (8, "$.templates.move.duration")
    # resolution 720P comes from defaults; wan2.2-t2v-plus offers 480P and 1080P only
    assert any("does not offer 720P (from defaults)" in m for m in messages)


def test_geometry_switches_layers_without_conflict(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
defaults: {model: wan2.6-t2v, size: "1280*720"}
scenes:
  - id: a
    shots:
      - {id: x, prompt: p}
      - {id: y, prompt: p, model: wan2.7-t2v, resolution: 1080P, ratio: "9:16"}
      - {id: z, prompt: p, resolution: 720P, ratio: "1:1"}
""")
    loaded = loader.load(spec)
    x, y, z = loaded.scenes[0].shots
    assert (x.size, x.resolution) == ("1280*720", None)
    assert (y.size, y.resolution, y.ratio) == (None, "1080P", "9:16")
    # resolution + ratio on a size model: the request carries the standard size
    body = request.build(z, 1, {}, {}).body
    assert body["parameters"]["size"] == "960*960"


def test_references_roles_voice_and_description(project, clip):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
assets:
  still: media/still.png
  voice: media/voice.wav
  clip: media/ref.mp4
scenes:
  - id: a
    shots:
      - {id: src, model: wan2.7-t2v, prompt: p}
      - id: x
        model: wan2.7-r2v
        prompt: Image 1 talks to Video 1
        duration: 8
        references:
          - {asset: still, voice: voice, description: the captain}
          - clip
          - {shot: src}
""")
    shot = loader.load(spec).shot("a.x")
    assert shot.inputs == (
        Input("reference_image", asset="still", voice="voice", description="the captain"),
        Input("reference_video", asset="clip"),
        Input("reference_video", ref=ShotRef("a.src")),
    )


def test_input_send_order_and_cross_scene_refs(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
assets: {still: media/still.png}
scenes:
  - id: one
    shots: [{id: src, model: wan2.7-t2v, prompt: p}]
  - id: two
    shots:
      - id: x
        model: wan2.7-i2v
        last_frame: still
        first_clip: {shot: one.src}
""")
    shot = loader.load(spec).shot("two.x")
    assert [i.role for i in shot.inputs] == ["first_clip", "last_frame"]
    assert shot.inputs[0].ref == ShotRef("one.src", None)


def test_settings(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
settings:
  backend: preview
  region: singapore
  cache: .cache/wanflow
  limits:
    wan2.7-t2v: {concurrency: 3, submit_rps: 1.5}
scenes:
  - id: a
    shots: [{id: x, model: wan2.7-t2v, prompt: p}]
""")
    settings = loader.load(spec).settings
    assert settings.backend == "preview" and settings.region == "singapore"
    assert settings.cache == ".cache/wanflow"
    assert settings.limits[0].model == "wan2.7-t2v" and settings.limits[0].concurrency == 3
    assert settings.limits[0].submit_rps == 1.5


# --------------------------------------------------------------------------- errors and warnings

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
    warning = next(d for d in diags if d.severity == "warning")
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
    loaded = loader.load(spec)
    assert len(loaded.warnings) == 1 and loaded.warnings[0].severity == "warning"


def test_project_root(tmp_path):
    spec = write(tmp_path / "deep" / "er" / "s.yaml", "wanflow: 1\nname: s\n")
    assert loader._project_root(str(spec.parent)) == str(spec.parent)
    (tmp_path / ".git").mkdir()
    assert loader._project_root(str(spec.parent)) == str(tmp_path)
    (tmp_path / "deep" / ".wanflow-root").write_text("")
    assert loader._project_root(str(spec.parent)) == str(tmp_path / "deep")


def test_assets_may_not_escape_the_project_even_through_includes(project):
    write(project / "lib" / "lib.yaml", "wanflow: 1\nname: lib\nassets: {pw: ../../../etc/x.png}\n")
    spec = write(project / "s.yaml", "wanflow: 1\nname: s\ninclude: [lib/lib.yaml]\nscenes:\n"
                                     "  - id: a\n    shots: [{id: x, model: wan2.7-t2v, prompt: p}]\n")
    (diag,) = errors_of(spec)
    assert diag.where.file.endswith("lib/lib.yaml") and diag.where.path == "$.assets.pw"
    assert "leaves the project directory" in diag.message


# --------------------------------------------------------------------------- the schema

def test_schema_text_is_the_committed_schema():
    text = loader.schema_text()
    assert text == (ROOT / "schemas" / "wanflow.schema.json").read_text("utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def _walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_schema_describes_every_property_and_closes_objects():
    schema = loader.schema()
    for path, node in _walk(schema):
        props = node.get("properties")
        if isinstance(props, dict) and not path.endswith(".properties"):
            for name, sub in props.items():
                assert sub.get("description"), f"{path}.properties.{name} has no description"
            assert node.get("additionalProperties") is False, f"{path} is open"


def test_schema_enums_match_the_model_table():
    defs = loader.schema()["$defs"]
    assert set(defs["model"]["anyOf"][0]["enum"]) == set(models.model_names())
    assert defs["resolution"]["enum"] == list(models.RESOLUTIONS)
    assert defs["ratio"]["enum"] == list(models.RATIOS)
    assert defs["size"]["enum"] == list(models.SIZES.values())
    assert defs["seed"]["maximum"] == models.SEED_MAX
    durations = {d for m in models.MODELS.values() for d in m.durations}
    assert (defs["duration"]["minimum"], defs["duration"]["maximum"]) == (min(durations), max(durations))
    regions = loader.schema()["$defs"]["settings"]["properties"]["region"]["enum"]
    assert regions == list(models.REGIONS)
    shot_keys = set(defs["shot"]["properties"])
    assert set(loader.SHOT_FIELDS) <= shot_keys
    assert set(defs["template"]["properties"]) - shot_keys == {"params"}


def test_schema_alone_accepts_every_example():
    validator = jsonschema.Draft202012Validator(loader.schema())
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        doc = loader._read(str(path), str(path), library=True)
        if "scenes" in doc.data:
            assert not list(validator.iter_errors(doc.data)), path


def test_snapshot_models_are_accepted(project):
    spec = write(project / "s.yaml", "wanflow: 1\nname: s\nscenes:\n  - id: a\n    shots:\n"
                                     "      - {id: x, model: wan2.7-t2v-2026-06-12, prompt: p, duration: 15}\n")
    assert loader.load(spec).shot("a.x").model == "wan2.7-t2v-2026-06-12"


def test_only_the_loader_imports_yaml_and_jsonschema():
    for path in (ROOT / "wanflow").glob("*.py"):
        if path.name == "loader.py":
            continue
        text = path.read_text("utf-8")
        assert not re.search(r"^\s*(import|from)\s+(yaml|jsonschema)\b", text, re.M), path.name


# --------------------------------------------------------------------------- pure helpers

def test_check_helpers():
    assert checks.format_numbers(range(2, 16)) == "2–15"
    assert checks.format_numbers([5, 10]) == "5, 10"
    assert checks.format_numbers([3, 4, 5, 8]) == "3–5, 8"
    assert checks.did_you_mean("durtion", ["duration", "ratio"]) == "; did you mean 'duration'?"
    assert checks.did_you_mean("zzz", ["duration"]) == ""
    assert checks.media_kind("a/b.PNG") == "image"
    assert checks.media_kind("https://e.com/v.mp4?sig=1") == "video"
    assert checks.media_kind("x.txt") is None
    assert checks.path_problem("/etc/x", "/p", "/p").startswith("path '/etc/x' must be relative")
    assert "leaves the project" in checks.path_problem("../x", "/p", "/p")
    assert checks.path_problem("a/../b.png", "/p/s", "/p") is None
    dups = checks.unique("film id", [("a", Where("f", 1, 1)), ("a", Where("f", 4, 3))])
    assert len(dups) == 1 and dups[0].where.line == 4 and "first defined at f:1:1" in dups[0].message


def test_json_path():
    assert loader.json_path(("scenes", 0, "shots", 2, "duration")) == "$.scenes[0].shots[2].duration"
    assert loader.json_path(("settings", "limits", "wan2.7-t2v")) == '$.settings.limits["wan2.7-t2v"]'
    assert loader.json_path(()) == "$"
