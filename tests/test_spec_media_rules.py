"""The checks of input media files, with the limits each model has in the model table."""
from __future__ import annotations

import dataclasses
import wave

import pytest
from spec_files import add_media, errors_of, write

from wanflow import media, models
from wanflow.spec import load

VOICE_SPEC = """\
wanflow: 1
name: s
assets: {still: media/still.png, long: media/long.wav}
scenes:
  - id: a
    shots:
      - id: x
        model: wan2.7-r2v
        prompt: Image 1 says hello
        references: [{asset: still, voice: long}]
"""
CLIP_SPEC = """\
wanflow: 1
name: s
assets: {short: media/short.mp4}
scenes:
  - id: a
    shots:
      - {id: x, model: wan2.7-i2v, prompt: it goes on, first_clip: short}
"""


@pytest.fixture
def project(project):
    """The project (it holds `.git`) with a still, a 12 s voice and a 1 s clip."""
    add_media(project)
    with wave.open(str(project / "media" / "long.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000 * 12)
    media.render_preview(media.PreviewCard("a", "b", 1, "p", 1.0, 160, 96, 8),
                         str(project / "media" / "short.mp4"))
    return project


def test_reference_voice_length_is_the_models(project, monkeypatch):
    spec = write(project / "s.yaml", VOICE_SPEC)
    (diag,) = errors_of(spec)
    assert diag.where.path == "$.assets.long"
    assert diag.message == ("asset 'long' (media/long.wav): duration 12.00 s is longer than "
                            "the maximum of 10 s")
    r2v = models.MODELS["wan2.7-r2v"]
    monkeypatch.setitem(models.MODELS, r2v.name,
                        dataclasses.replace(r2v, voice_seconds=(1.0, 15.0)))
    assert load(spec).shot("a.x").inputs[0].voice == "long"


def test_first_clip_length_is_the_models(project, monkeypatch):
    spec = write(project / "s.yaml", CLIP_SPEC)
    (diag,) = errors_of(spec)
    assert diag.where.path == "$.assets.short"
    assert "shorter than the minimum of 2 s" in diag.message
    i2v = models.MODELS["wan2.7-i2v"]
    monkeypatch.setitem(models.MODELS, i2v.name,
                        dataclasses.replace(i2v, first_clip_seconds=(0.5, 10.0)))
    assert load(spec).shot("a.x").inputs[0].asset == "short"


BED_SPEC = """\
wanflow: 1
name: s
assets: {score: media/short.wav}
scenes:
  - id: a
    audio: {bed}
    shots:
      - {id: x, model: wan2.7-t2v, prompt: a harbor, duration: 5}
"""


@pytest.mark.parametrize("bed, warned", [("score", True), ("{asset: score, loop: true}", False),
                                         ("{asset: score, fade: 0.5}", False)])
def test_a_bed_shorter_than_its_scene_is_a_warning_unless_it_loops_or_fades(project, bed,
                                                                             warned):
    media.write_tone(str(project / "media" / "short.wav"), 2.0)
    spec = load(write(project / "s.yaml", BED_SPEC.replace("{bed}", bed)))
    messages = [d.message for d in spec.warnings]
    assert any("stops in silence" in m and "loop: true" in m for m in messages) == warned
    if not warned:
        assert spec.scenes[0].audio.loop or spec.scenes[0].audio.fade == 0.5
