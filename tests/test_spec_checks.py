"""The pure helpers of the semantic checks (the rules themselves are exercised through the
corpus of invalid specs in test_spec_validate.py), and the warnings they give."""
from __future__ import annotations

from spec_files import write

from wanflow.spec import checks, load, summary_line
from wanflow.spec.nodes import Where


def test_check_helpers():
    assert checks.media_kind("a/b.PNG") == "image"
    assert checks.media_kind("https://e.com/v.mp4?sig=1") == "video"
    assert checks.media_kind("x.txt") is None
    dups = checks.unique("film id", [("a", Where("f", 1, 1)), ("a", Where("f", 4, 3))])
    assert len(dups) == 1 and dups[0].where.line == 4 and "first defined at f:1:1" in dups[0].message


# --------------------------------------------------------------------------- Wan 3.0


def test_documents_are_a_media_kind():
    assert checks.media_kind("brief.PDF") == "document"
    assert checks.media_kind("https://e.com/notes.docx") == "document"


def test_a_dropped_parameter_from_defaults_is_left_out_with_a_warning(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
defaults: {negative_prompt: blur, shot_type: single, size: "1280*720", prompt_extend: false}
scenes:
  - id: a
    shots:
      - {id: x, model: wan3.0-video, prompt: p, duration: auto}
      - {id: y, model: wan2.6-t2v, prompt: q}
""")
    loaded = load(spec)
    dropped = sorted((d.where.path, d.message) for d in loaded.warnings)
    assert [path for path, _ in dropped] == ["$.defaults.negative_prompt", "$.defaults.shot_type",
                                             "$.defaults.size"]
    assert "wan3.0-video takes no negative_prompt (from defaults): it is left out" in dropped[0][1]
    assert summary_line(loaded).endswith("up to 35 s of video, 3 warnings")
