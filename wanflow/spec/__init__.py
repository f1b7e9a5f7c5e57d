"""The spec language: loading and validating a spec, and the frozen values it becomes.

    spec = wanflow.spec.load("wanflow.yaml")   # raises SpecError with every diagnostic

Light to import: the node classes only. `load` and `schema_text` bring in the YAML parser and
the JSON Schema validator when called, so commands that never read a spec (and a no-op run,
which reuses a parsed spec) do not pay for them.
"""
from __future__ import annotations

import os
from typing import Any

from .nodes import (
    Asset,
    AudioBed,
    Diagnostic,
    Film,
    Input,
    ModelLimit,
    Scene,
    Shot,
    ShotRef,
    Spec,
    SpecSettings,
    Transition,
    Where,
)

__all__ = ["Asset", "AudioBed", "Diagnostic", "Film", "Input", "ModelLimit", "Scene", "Shot",
           "ShotRef", "Spec", "SpecSettings", "Transition", "Where",
           "load", "schema_text", "summary", "summary_line"]


def load(path: str | os.PathLike[str]) -> Spec:
    """Read, resolve and check the spec at `path`.

    Raises SpecError with every diagnostic found (warnings included, severity "warning");
    on success the returned Spec carries the warnings.
    """
    from .loader import load as load_spec

    return load_spec(path)


def schema_text() -> str:
    """The packaged JSON Schema of the spec language."""
    from .schema import schema_text as text

    return text()


def summary(spec: Spec) -> dict[str, Any]:
    """Counts and seconds of a loaded spec, for `validate --json` and the summary line.

    A clip whose length the model chooses (`duration: auto`) or that follows a clip not yet
    made (`duration: source`) counts as long as it can be, and `up_to` says so."""
    from .checks import clip_seconds, longest_clip

    shots = list(spec.shots())
    seconds = 0
    generated = 0
    up_to = False
    for shot in shots:
        known = clip_seconds(shot)
        up_to = up_to or known is None
        length = int(known) if known is not None else (longest_clip(shot) or 0)
        seconds += length
        generated += length * shot.takes
    return {
        "name": spec.name,
        "file": spec.file,
        "scenes": len(spec.scenes),
        "shots": len(shots),
        "takes": sum(s.takes for s in shots),
        "films": len(spec.films),
        "assets": len(spec.assets),
        "seconds": seconds,
        "generated_seconds": generated,
        "up_to": up_to,
        "models": sorted({s.model for s in shots}),
        "files": list(spec.files),
        "warnings": len(spec.warnings),
        "library": spec.library,
        "templates": list(spec.templates),
    }


def summary_line(spec: Spec) -> str:
    """E.g. `2 scenes, 7 shots (9 takes), 1 film, 38 s of video` (`up to 38 s` when a
    model chooses a length)."""
    from .messages import plural

    if spec.library:
        return (f"a library checked on its own: {plural(len(spec.templates), 'template')}, "
                f"{plural(len(spec.variables), 'var')}, {plural(len(spec.assets), 'asset')}, "
                "no scenes")
    s = summary(spec)
    shots = plural(s["shots"], "shot")
    if s["takes"] != s["shots"]:
        shots += f" ({plural(s['takes'], 'take')})"
    line = (f"{plural(s['scenes'], 'scene')}, {shots}, {plural(s['films'], 'film')}, "
            f"{'up to ' if s['up_to'] else ''}{s['seconds']} s of video")
    if s["warnings"]:
        line += f", {plural(s['warnings'], 'warning')}"
    return line
