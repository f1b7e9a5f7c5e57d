"""`wanflow init`: a small working project to start from.

It writes a spec (one scene of two shots, the second starting on the first's last frame,
under a score made on the spot), a copy of the JSON Schema that the spec's first line points
editors at, and the ignore rules for what `wanflow run` rebuilds. Existing files are never
overwritten; an existing `.gitignore` only gains the rules it lacks.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

SPEC_NAME = "wanflow.yaml"
SCHEMA_NAME = "wanflow.schema.json"
SCORE_PATH = "media/score.wav"
SCORE_SECONDS = 6.0

_SPEC = """\
# yaml-language-server: $schema={schema}
# A first wanflow spec. `wanflow run` renders an offline preview (no key, no cost) to
# renders/{name}.preview.mp4; `wanflow run --backend dashscope` generates it for real
# (with DASHSCOPE_API_KEY set; `wanflow plan --backend dashscope` says what it would cost).
wanflow: 1
name: {name}

defaults:                       # every shot gets these unless it says otherwise
  model: wan2.7-t2v
  resolution: 720P
  ratio: "16:9"
  prompt_extend: false
  watermark: false

assets:
  score: {score}          # a placeholder tone made by wanflow init: use your own music

scenes:
  - id: opening
    audio: {{asset: score, volume: 0.6}}        # laid under the assembled scene
    transition: {{type: crossfade, seconds: 0.5}}
    shots:
      - id: wide
        prompt: "Wide shot of a lighthouse on a rocky cape at dawn; slow waves roll in."
        duration: 3
      - id: closer
        model: wan2.7-i2v
        first_frame: {{shot: wide, frame: last}}   # continuity: starts where `wide` ends
        prompt: "The camera pushes in on the lighthouse lamp as it flickers on."
        duration: 3

films:
  - id: main
    path: renders/{name}.mp4
    scenes: [opening]
"""

_IGNORE_HEADER = """\
# wanflow: the cache (objects, journal) and the renders are rebuilt by `wanflow run`.
# wanflow.lock records paid generations (keys, task ids, costs): commit it. Preview runs
# are free and reproducible, so their lock files are not committed.
"""
IGNORE_RULES = (".wanflow/", "renders/", "*.preview.lock")


@dataclass(frozen=True)
class Started:
    directory: str
    written: tuple[str, ...]      # files created, relative to `directory`
    ignore_added: tuple[str, ...]  # rules added to an existing .gitignore


class AlreadyThere(Exception):
    """The folder already holds files `init` would write."""

    def __init__(self, paths: list[str]):
        super().__init__(", ".join(paths))
        self.paths = paths


def project_name(directory: str) -> str:
    """The spec's name from the folder's: lowercase letters, digits, '-' and '_'."""
    base = os.path.basename(os.path.abspath(directory)).lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", base).strip("-_")
    return slug if slug and slug[0].isalnum() else "my-film"


def start(directory: str) -> Started:
    """Write the starter project into `directory` (created if missing). Raises
    AlreadyThere, before writing anything, if a file it would create exists."""
    from . import media
    from .spec.schema import schema_text

    own = (SPEC_NAME, SCHEMA_NAME, SCORE_PATH)
    taken = [p for p in own if os.path.lexists(os.path.join(directory, p))]
    if taken:
        raise AlreadyThere(taken)
    os.makedirs(os.path.join(directory, os.path.dirname(SCORE_PATH)), exist_ok=True)
    name = project_name(directory)
    media.write_tone(os.path.join(directory, SCORE_PATH), SCORE_SECONDS, freq=220.0)
    _write_new(os.path.join(directory, SCHEMA_NAME), schema_text())
    _write_new(os.path.join(directory, SPEC_NAME),
               _SPEC.format(schema=SCHEMA_NAME, name=name, score=SCORE_PATH))
    ignore = os.path.join(directory, ".gitignore")
    written = [SPEC_NAME, SCHEMA_NAME, SCORE_PATH]
    if os.path.exists(ignore):
        added = _extend_ignore(ignore)
    else:
        _write_new(ignore, _IGNORE_HEADER + "\n".join(IGNORE_RULES) + "\n")
        written.append(".gitignore")
        added = ()
    return Started(directory, tuple(written), added)


def _write_new(path: str, text: str) -> None:
    with open(path, "x", encoding="utf-8") as f:   # "x": never overwrite
        f.write(text)


def _extend_ignore(path: str) -> tuple[str, ...]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    present = {line.strip() for line in text.splitlines()}
    missing = tuple(r for r in IGNORE_RULES if r not in present)
    if missing:
        with open(path, "a", encoding="utf-8") as f:
            lead = "" if not text or text.endswith("\n") else "\n"
            f.write(lead + _IGNORE_HEADER + "\n".join(missing) + "\n")
    return missing
