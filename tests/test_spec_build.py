"""Building the spec values: layers of defaults, templates and the shot's own fields, geometry,
inputs in send order, references and settings."""
from __future__ import annotations

from dataclasses import fields

import pytest
from spec_files import add_media, errors_of, write

from wanflow.plan import request
from wanflow.spec import load
from wanflow.spec.nodes import Input, ShotRef, SpecSettings


@pytest.fixture
def project(project):
    """The project (it holds `.git`) with a still and a driving-audio file under `media/`."""
    return add_media(project)


@pytest.fixture
def clip(project):
    """A short real MP4 in the project (reference videos are decoded and checked)."""
    from wanflow import media

    media.render_preview(media.PreviewCard("a", "b", 1, "p", 2.5, 160, 96, 8),
                         str(project / "media" / "ref.mp4"))
    return project / "media" / "ref.mp4"


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
    loaded = load(spec)
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
    shot = load(spec).shot("a.x")
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
    shot = load(spec).shot("two.x")
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
    settings = load(spec).settings
    assert settings.backend == "preview" and settings.region == "singapore"
    assert settings.cache == ".cache/wanflow"
    assert settings.limits[0].model == "wan2.7-t2v" and settings.limits[0].concurrency == 3
    assert settings.limits[0].submit_rps == 1.5


def test_a_spec_cannot_set_the_base_url(project):
    """The key goes where the base URL points: only the command line, the environment or the
    user config file choose it (the corpus has the message: schema-settings-base-url.yaml)."""
    spec = write(project / "s.yaml", "wanflow: 1\nname: s\nsettings: {base_url: "
                                     "'https://collector.example.net'}\nscenes:\n  - id: a\n"
                                     "    shots: [{id: x, model: wan2.7-t2v, prompt: p}]\n")
    (diag,) = errors_of(spec)
    assert diag.where.path == "$.settings.base_url" and (diag.where.line, diag.where.col) == (3, 22)
    assert "--base-url, WANFLOW_BASE_URL or the user config file" in diag.message
    assert "base_url" not in {f.name for f in fields(SpecSettings)}
    assert not hasattr(SpecSettings(), "base_url")


def test_lowercase_resolutions_are_read_as_upper_case_and_key_alike(project):
    from wanflow.plan import planner

    text = ("wanflow: 1\nname: s\ndefaults: {{model: wan2.7-t2v, resolution: {shot}}}\n"
            "scenes:\n  - id: a\n    shots: [{{id: x, prompt: p}}]\n"
            "films:\n  - {{id: f, path: renders/f.mp4, scenes: [a], resolution: {film}}}\n")
    lower = load(write(project / "lower.yaml", text.format(shot="720p", film="1080p")))
    upper = load(write(project / "upper.yaml", text.format(shot="720P", film="1080P")))
    assert lower.shot("a.x").resolution == "720P" and lower.films[0].resolution == "1080P"

    def keys(spec):
        plan = planner.build(spec, "preview/1")
        return {t.id: plan.prepare(t, {}).key for t in plan.gen_tasks()}
    assert keys(lower) == keys(upper)
    (diag,) = errors_of(write(project / "bad.yaml", text.format(shot="720x", film="1080P")))
    assert ("unknown resolution '720x'; did you mean '720P'? "
            "(allowed: 480P, 720P, 1080P)") in diag.message


def test_http_and_https_asset_urls_are_accepted(project):
    spec = load(write(project / "s.yaml", """\
wanflow: 1
name: s
assets:
  verse: http://cdn.example.com/audio/verse.mp3
  still: {url: "https://cdn.example.com/still.png"}
scenes:
  - id: a
    shots: [{id: x, model: wan2.7-t2v, prompt: p, audio: verse}]
"""))
    assert spec.assets["verse"].url == "http://cdn.example.com/audio/verse.mp3"
    assert spec.assets["still"].url == "https://cdn.example.com/still.png"
