"""Helpers for the tests of the spec package: write spec files, collect diagnostics."""
from __future__ import annotations

from pathlib import Path

import pytest

from wanflow.errors import SpecError
from wanflow.spec import load

ROOT = Path(__file__).resolve().parent.parent
MEDIA = Path(__file__).resolve().parent / "specs" / "media"


def add_media(root: Path) -> Path:
    """Give a project a still and a driving-audio file under `media/`."""
    (root / "media").mkdir()
    (root / "media" / "still.png").write_bytes((MEDIA / "still.png").read_bytes())
    (root / "media" / "voice.wav").write_bytes(
        (ROOT / "examples" / "media" / "cat-verse.wav").read_bytes())
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def errors_of(path) -> list:
    with pytest.raises(SpecError) as info:
        load(path)
    return info.value.diagnostics
