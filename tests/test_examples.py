"""The examples: every spec validates with the real `wanflow` command, the guide clips carry
the settings of the Wan guide, the film shows continuity, and the media are small and made
by the project."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wanflow_command

from wanflow import media
from wanflow.spec import load

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALL_YAML = sorted(EXAMPLES.rglob("*.yaml"))
SPECS = [p for p in ALL_YAML if p.parent.name != "templates" and p.parent.name != "ci"]
SCHEMA = ROOT / "schemas" / "wanflow.schema.json"


def test_there_are_the_guide_clips_a_film_and_a_library():
    names = {p.relative_to(EXAMPLES).as_posix() for p in ALL_YAML}
    assert {"guide/cheetah-chase.yaml", "guide/floating-garden.yaml",
            "guide/martial-arts-duel.yaml", "guide/schoolyard-dialogue.yaml",
            "guide/cat-general.yaml", "guide/girl-with-donkeys.yaml",
            "film/wanflow.yaml", "templates/library.yaml"} <= names


def test_wanflow_validate_exits_0_on_every_example():
    proc = subprocess.run(wanflow_command() + ["validate", *map(str, SPECS)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count(": ok: ") == len(SPECS)
    assert "warning" not in proc.stdout


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_schema_comment_points_at_the_schema(path):
    first = path.read_text("utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix)
    target = (path.parent / first[len(prefix):]).resolve()
    assert target == SCHEMA.resolve()


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_every_spec_names_a_film(path):
    spec = load(path)
    assert spec.films and all(f.path.startswith("renders/") and f.path.endswith(".mp4")
                              for f in spec.films)
    assert spec.warnings == ()


WAN27 = "wan2.7-t2v-2026-04-25"   # the dated snapshot the guide's code calls, as written
GUIDE = {  # the settings the Wan guide shows for each clip (shared/reference/seed-examples.md)
    "cheetah-chase": {"model": WAN27, "resolution": "720P", "ratio": "16:9", "duration": 15,
                      "prompt_extend": True, "watermark": True},
    "floating-garden": {"model": WAN27, "resolution": "720P", "ratio": "16:9", "duration": 10,
                        "seed": 12345, "watermark": True},
    "martial-arts-duel": {"model": WAN27, "audio": None},
    "schoolyard-dialogue": {"model": WAN27, "audio": None},
    "cat-general": {"model": WAN27, "resolution": "720P", "ratio": "16:9", "duration": 10,
                    "negative_prompt": "", "seed": 12345, "audio": "verse", "watermark": True},
    "girl-with-donkeys": {"model": "wan2.2-t2v-plus", "size": "832*480", "prompt_extend": True,
                          "watermark": True, "seed": 12345},
}


@pytest.mark.parametrize("name", sorted(GUIDE))
def test_guide_clip_settings(name):
    spec = load(EXAMPLES / "guide" / f"{name}.yaml")
    (shot,) = list(spec.shots())
    for key, value in GUIDE[name].items():
        assert getattr(shot, key) == value, key
    assert len(shot.prompt) > 150


def test_guide_prompts_carry_timestamped_shots():
    for name, count in (("cheetah-chase", 5), ("floating-garden", 4)):
        (shot,) = list(load(EXAMPLES / "guide" / f"{name}.yaml").shots())
        assert shot.prompt.count("s]") == count


def test_film_example_shows_continuity_takes_and_a_score():
    spec = load(EXAMPLES / "film" / "wanflow.yaml")
    shots = list(spec.shots())
    assert len(spec.scenes) >= 2 and len(spec.files) >= 2          # multi-scene, include
    assert any(i.ref and i.ref.frame == "last" and i.role == "first_frame"
               for s in shots for i in s.inputs)                     # i2v from a last frame
    assert any(s.model.endswith("kf2v-flash") or (s.model == "wan2.7-i2v" and any(
        i.role == "first_clip" for i in s.inputs)) for s in shots)
    assert any(s.takes > 1 and 1 <= s.pick <= s.takes for s in shots)
    assert any(s.needs for s in shots)
    assert any(sc.transition.type == "crossfade" for sc in spec.scenes)
    assert any(sc.audio and sc.audio.duck is not None for sc in spec.scenes)
    assert any(s.template for s in shots)


def test_media_are_small_and_within_the_api_limits():
    folder = EXAMPLES / "media"
    for path in folder.iterdir():
        if path.suffix == ".png":
            assert path.stat().st_size <= 50 * 1024
            assert min(media.image_size(str(path))) >= 360
            assert media.check_image(str(path)) == []
        elif path.suffix == ".wav":
            assert path.stat().st_size <= 128 * 1024
            assert media.check_audio(str(path)) == []


def test_make_media_is_deterministic(tmp_path):
    script = EXAMPLES / "media" / "make_media.py"
    shutil.copy(script, tmp_path / "make_media.py")
    proc = subprocess.run([sys.executable, str(tmp_path / "make_media.py")], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    made = sorted(p.name for p in tmp_path.iterdir() if p.name != "make_media.py")
    assert made == sorted(p.name for p in (EXAMPLES / "media").iterdir()
                          if p.name != "make_media.py" and not p.name.startswith("."))
    for name in made:
        if name.endswith(".wav"):   # audio is bit-exact; stills depend on the installed font
            assert (tmp_path / name).read_bytes() == (EXAMPLES / "media" / name).read_bytes()
