"""The pure helpers of the semantic checks (the rules themselves are exercised through the
corpus of invalid specs in test_spec_validate.py), and the warnings they give."""
from __future__ import annotations

import datetime

import pytest
from spec_files import write

from wanflow import models
from wanflow.spec import checks, load, summary_line
from wanflow.spec.nodes import Where


def test_check_helpers():
    assert checks.media_kind("a/b.PNG") == "image"
    assert checks.media_kind("https://e.com/v.mp4?sig=1") == "video"
    assert checks.media_kind("x.txt") is None
    dups = checks.unique("film id", [("a", Where("f", 1, 1)), ("a", Where("f", 4, 3))])
    assert len(dups) == 1 and dups[0].where.line == 4
    assert "first defined at f:1:1" in dups[0].message


# --------------------------------------------------------------------------- Wan 3.0, lifecycle


def test_documents_are_a_media_kind():
    assert checks.media_kind("brief.PDF") == "document"
    assert checks.media_kind("https://e.com/notes.docx") == "document"


def test_a_dropped_parameter_from_defaults_is_left_out_with_a_warning(project):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
settings: {accept_status: [preview]}
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
                                             "$.defaults.size", "$.scenes[0].shots[1].model"]
    assert "wan3.0-video takes no negative_prompt (from defaults): it is left out" in dropped[0][1]
    assert "legacy" in dropped[3][1]   # wan2.6-t2v; only preview was accepted
    assert summary_line(loaded).endswith("up to 35 s of video, 4 warnings")


def test_lifecycle_warnings_follow_the_status_and_todays_date(project, monkeypatch):
    spec = write(project / "s.yaml", """\
wanflow: 1
name: s
scenes:
  - id: a
    shots:
      - {id: x, model: wan3.0-video, prompt: p}
      - {id: y, model: wan3.0-video, prompt: q}
      - {id: z, model: wan2.7-t2v-2026-04-25, prompt: r}
""")
    (preview,) = load(spec).warnings
    assert preview.where.line == 6 and preview.where.path == "$.scenes[0].shots[0].model"
    assert "wan3.0-video is a preview model (used by 2 shots)" in preview.message
    assert "accept_status: [preview]" in preview.message

    monkeypatch.setattr(models, "RETIREMENTS", {"wan2.7-t2v-2026-04-25": "2027-03-01"})
    monkeypatch.setattr(models, "today", lambda: datetime.date(2027, 1, 29))
    assert len(load(spec).warnings) == 1          # 31 days ahead: not yet
    monkeypatch.setattr(models, "today", lambda: datetime.date(2027, 1, 30))
    soon = [d for d in load(spec).warnings if "retires" in d.message]
    assert soon and "retires on 2027-03-01, in 30 days" in soon[0].message
    assert soon[0].where.path == "$.scenes[0].shots[2].model"
    monkeypatch.setattr(models, "today", lambda: datetime.date(2027, 3, 2))
    gone = [d.message for d in load(spec).warnings if "retired" in d.message]
    assert gone == [("wan2.7-t2v-2026-04-25 was retired on 2027-03-01: calls to it fail; move "
                     "to a current model")]
    # a family's date covers its snapshots; accepting a status never hides a retirement
    monkeypatch.setattr(models, "RETIREMENTS", {"wan3.0-video": "2027-03-10"})
    accepted = write(project / "t.yaml", spec.read_text().replace(
        "name: s\n", "name: t\nsettings: {accept_status: [preview]}\n"))
    (retiring,) = load(accepted).warnings
    assert "wan3.0-video retires on 2027-03-10, in 8 days (used by 2 shots)" in retiring.message


@pytest.mark.parametrize("status", [models.PREVIEW, models.LEGACY])
def test_the_table_marks_preview_and_legacy_models(status):
    assert any(m.status == status for m in models.MODELS.values())
    assert models.MODELS["wan3.0-video"].status == models.PREVIEW
    assert models.MODELS["wan2.6-t2v"].status == models.LEGACY
    assert models.MODELS["wan2.7-t2v"].status == models.GA
