"""`wanflow init`: a working project to start from, and every command finding its spec."""
from __future__ import annotations

import json

from conftest import run_cli

from wanflow import media, starter


def events(proc) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_init_then_run_offline_then_run_again_generates_nothing(tmp_path):
    folder = tmp_path / "Harbor Film"
    made = run_cli(["init", str(folder)], check=0)
    assert "wrote wanflow.yaml, wanflow.schema.json, media/score.wav, .gitignore" in made.stdout
    assert f"next: cd {folder} && wanflow run" in made.stdout
    spec = (folder / "wanflow.yaml").read_text()
    assert spec.startswith("# yaml-language-server: $schema=wanflow.schema.json\n")
    assert "name: harbor-film" in spec and "first_frame: {shot: wide, frame: last}" in spec
    assert media.media_duration(str(folder / "media" / "score.wav")) == starter.SCORE_SECONDS
    schema = run_cli(["schema"], check=0).stdout
    assert (folder / "wanflow.schema.json").read_text() == schema

    # No network and no key: run_cli drops DASHSCOPE_API_KEY, and a proxy that goes nowhere
    # would break any request that tried to leave the machine.
    offline = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    first = run_cli(["run"], cwd=folder, env=offline, check=0)
    assert "2 generated, 0 cached, 0 failed, 0 skipped" in first.stderr
    assert "film    renders/harbor-film.preview.mp4" in first.stderr
    film = media.probe(str(folder / "renders" / "harbor-film.preview.mp4"))
    assert abs(film.duration - 5.5) < 0.1 and film.has_audio    # 3 s + 3 s, 0.5 s crossfade
    second = events(run_cli(["run", "--json"], cwd=folder, env=offline, check=0))
    assert next(e for e in second if e["event"] == "plan")["to_run"] == 0
    done = second[-1]
    assert done["event"] == "done" and done["generated"] == 0 and done["cached"] == 6
    assert done["films"] == ["renders/harbor-film.preview.mp4"]
    assert not any(e["event"] in ("start", "submitted", "finished") for e in second)


def test_init_never_overwrites_and_extends_an_existing_gitignore(tmp_path):
    (tmp_path / "wanflow.yaml").write_text("mine\n")
    refused = run_cli(["init"], cwd=tmp_path, check=2)
    assert "already has wanflow.yaml" in refused.stderr and "never overwrites" in refused.stderr
    assert (tmp_path / "wanflow.yaml").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wanflow.yaml"]

    other = tmp_path / "other"
    other.mkdir()
    (other / ".gitignore").write_text("__pycache__/\nrenders/")
    run_cli(["init", str(other)], check=0)
    lines = (other / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["__pycache__/", "renders/"]
    assert lines.count("renders/") == 1 and ".wanflow/" in lines and "*.preview.lock" in lines


def test_project_name_is_a_slug_of_the_folder():
    assert starter.project_name("/x/My Film (draft)") == "my-film-draft"
    assert starter.project_name("/x/___") == "my-film"
