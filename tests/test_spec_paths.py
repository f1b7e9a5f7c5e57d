"""Path rules on real paths: nothing is read from or written to outside the project through a
symlink, an output never lands on an input or in the cache, and a file that is not a spec is
never quoted. Each case builds real symlinks in a temporary project."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from spec_files import MEDIA, errors_of, write

from wanflow.spec import load, paths
from wanflow.spec import yaml as spec_yaml

SECRET = "sk-live-0123456789abcdef"
SHOT = "      - {id: x, model: wan2.7-t2v, prompt: p}\n"


def spec_text(extra: str = "", film: str = "renders/f.mp4", shot_path: str = "") -> str:
    shot = SHOT if not shot_path else SHOT.replace("prompt: p}", f"prompt: p, path: {shot_path}}}")
    return (f"wanflow: 1\nname: s\n{extra}scenes:\n  - id: a\n    shots:\n{shot}"
            f"films:\n  - {{id: f, path: {film}, scenes: [a]}}\n")


@pytest.fixture
def outside(tmp_path):
    """A directory beside the project, with a file CI would not want read or overwritten."""
    where = tmp_path / "outside"
    where.mkdir()
    (where / "secret.yaml").write_text(f"token: {SECRET}\n")
    (where / "still.png").write_bytes((MEDIA / "still.png").read_bytes())
    return where


@pytest.fixture
def proj(tmp_path):
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    return root


def messages(spec) -> str:
    return "\n".join(str(d) for d in errors_of(spec))


def test_path_problem():
    assert paths.path_problem("/etc/x", "/p", "/p").startswith("path '/etc/x' must be relative")
    assert "leaves the project" in paths.path_problem("../x", "/p", "/p")
    assert paths.path_problem("a/../b.png", "/p/s", "/p") is None
    assert paths.preview_variant("renders/x.mp4") == "renders/x.preview.mp4"


# --------------------------------------------------------------------------- reads

def test_a_symlinked_asset_leading_outside_is_refused(proj, outside):
    (proj / "media").mkdir()
    os.symlink(outside / "still.png", proj / "media" / "still.png")
    spec = write(proj / "s.yaml", spec_text("assets: {still: media/still.png}\n"))
    (diag,) = errors_of(spec)
    assert diag.where.path == "$.assets.still" and (diag.where.line, diag.where.col) == (3, 17)
    assert "leads outside the project through a symlink" in diag.message


def test_an_asset_in_a_symlinked_directory_leading_outside_is_refused(proj, outside):
    os.symlink(outside, proj / "media")
    spec = write(proj / "s.yaml", spec_text("assets: {still: media/still.png}\n"))
    assert "leads outside the project through a symlink" in messages(spec)


def test_a_symlinked_include_leading_outside_is_refused_before_it_is_read(proj, outside,
                                                                          monkeypatch):
    os.symlink(outside / "secret.yaml", proj / "lib.yaml")
    read = []
    real_read = spec_yaml.read
    monkeypatch.setattr("wanflow.spec.loader.read",
                        lambda path, *a, **k: read.append(path) or real_read(path, *a, **k))
    spec = write(proj / "s.yaml", spec_text("include: [lib.yaml]\n"))
    text = messages(spec)
    assert "include 'lib.yaml' leads outside the project through a symlink" in text
    assert read == [str(spec)]            # the linked file was never opened
    assert SECRET not in text and "token" not in text


def test_a_spec_symlinked_to_a_file_outside_is_not_read(proj, outside):
    os.symlink(outside / "secret.yaml", proj / "s.yaml")
    text = messages(proj / "s.yaml")
    assert "is a symlink to a file outside the project" in text and SECRET not in text


@pytest.mark.parametrize("content", [
    f"API_TOKEN: {SECRET}\n",                        # a mapping, but not a spec
    f"API_TOKEN={SECRET}\n",                          # a single value
    f"token: [{SECRET}\n",                            # broken YAML
    f"token: !!python/name:{SECRET}\n",               # a tag
    f"token: *{SECRET}\n",                            # an alias
    f"{SECRET}: 1\n{SECRET}: 2\n",                    # a duplicate key
])
def test_a_file_that_is_not_a_spec_is_never_quoted(proj, content):
    """Inside the project too: CI may leave credentials in the workspace (.env, key files)."""
    (proj / ".env").write_text(content)
    spec = write(proj / "s.yaml", spec_text("include: [.env]\n"))
    text = messages(spec)
    assert ".env" in text and SECRET not in text and "API_TOKEN" not in text
    os.symlink(proj / ".env", proj / "top.yaml")          # as the spec itself
    text = messages(proj / "top.yaml")
    assert "top.yaml" in text and SECRET not in text and "API_TOKEN" not in text


# --------------------------------------------------------------------------- writes

def test_an_output_directory_symlinked_outside_is_refused(proj, outside):
    os.symlink(outside, proj / "renders")
    spec = write(proj / "s.yaml", spec_text())
    (diag,) = errors_of(spec)
    assert diag.where.path == "$.films[0].path" and (diag.where.line, diag.where.col) == (8, 19)
    assert "output path 'renders/f.mp4' leads outside the project through a symlink" in diag.message


def test_an_output_file_symlinked_outside_is_refused(proj, outside):
    (proj / "renders").mkdir()
    os.symlink(outside / "f.mp4", proj / "renders" / "f.mp4")
    assert "leads outside the project through a symlink" in messages(write(proj / "s.yaml",
                                                                           spec_text()))


def test_a_cache_directory_leading_outside_is_refused(proj, outside):
    spec = write(proj / "s.yaml", spec_text("settings: {cache: ../outside/cache}\n"))
    (diag,) = errors_of(spec)
    assert diag.where.path == "$.settings.cache"
    assert "cache directory '../outside/cache' leaves the project" in diag.message
    assert "--cache or WANFLOW_CACHE" in diag.message
    os.symlink(outside, proj / "cachelink")
    spec = write(proj / "s.yaml", spec_text("settings: {cache: cachelink/c}\n"))
    (diag,) = errors_of(spec)
    assert "leads outside the project through a symlink" in diag.message
    os.symlink(outside, proj / ".wanflow")                 # the default cache directory
    spec = write(proj / "s.yaml", spec_text())
    (diag,) = errors_of(spec)
    assert "the cache directory .wanflow beside the spec is a symlink" in diag.message


# --------------------------------------------------------------------------- outputs are not inputs

def _with_clip(proj: Path, name: str) -> str:
    (proj / "media").mkdir(exist_ok=True)
    (proj / "media" / name).write_bytes(b"not really a clip")
    return f"assets: {{clip: media/{name}}}\n"


@pytest.mark.parametrize("asset, output", [
    ("clip.mp4", "media/clip.mp4"),                 # the same file
    ("clip.preview.mp4", "media/clip.mp4"),         # a preview run would write the asset
    ("clip.mp4", "media/clip.preview.mp4"),         # the same but for the preview mark
    ("clip.mp4", "media/../media/clip.mp4"),        # spelled differently
])
def test_an_output_may_not_be_an_asset(proj, asset, output):
    spec = write(proj / "s.yaml", spec_text(_with_clip(proj, asset), film=output))
    found = [d for d in errors_of(spec) if d.where.path == "$.films[0].path"]
    assert len(found) == 1 and "would overwrite asset 'clip'" in found[0].message
    assert (proj / "media" / asset).read_bytes() == b"not really a clip"


def test_an_output_may_not_be_a_symlink_to_an_asset_or_a_spec_file(proj):
    asset = _with_clip(proj, "clip.mp4")
    (proj / "renders").mkdir()
    os.symlink(proj / "media" / "clip.mp4", proj / "renders" / "a.mp4")
    os.symlink(proj / "lib.yaml", proj / "renders" / "b.preview.mp4")
    os.symlink(proj / "s.yaml", proj / "renders" / "c.mp4")
    write(proj / "lib.yaml", "wanflow: 1\nname: lib\n")
    spec = write(proj / "s.yaml", spec_text(asset + "include: [lib.yaml]\n", film="renders/c.mp4",
                                            shot_path="renders/a.mp4")
                 .replace("    shots:", "    path: renders/b.mp4\n    shots:"))
    text = messages(spec)
    assert "output path 'renders/a.mp4' of shot 'a.x' would overwrite asset 'clip'" in text
    assert ("output path 'renders/b.mp4' of scene 'a' "
            "would overwrite the included file lib.yaml") in text
    assert "output path 'renders/c.mp4' of film 'f' would overwrite the spec file" in text


@pytest.mark.parametrize("extra, output", [
    ("", ".wanflow/objects/f.mp4"),
    ("settings: {cache: build/cache}\n", "build/cache/f.mp4"),
])
def test_an_output_may_not_be_in_the_cache(proj, extra, output):
    spec = write(proj / "s.yaml", spec_text(extra, film=output))
    assert "is inside the cache directory" in messages(spec)


def test_a_spec_that_follows_the_rules_loads(proj):
    (proj / "renders").mkdir()
    os.symlink(proj / "renders", proj / "out")            # a symlink inside the project is fine
    spec = load(write(proj / "s.yaml", spec_text(_with_clip(proj, "clip.mp4"), film="out/f.mp4")))
    assert paths.still_trusted(spec)


def test_the_preview_variant_is_where_preview_runs_write():
    """The spec's rule must name the file a preview run writes (plan.tasks.render_path)."""
    from wanflow.plan import tasks

    render_path = tasks.render_path
    for path in ("renders/x.mp4", "out/a.b.mp4", "x.mp4"):
        assert render_path(path, False) == paths.preview_variant(path)
        assert render_path(path, True) == path
