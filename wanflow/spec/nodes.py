"""The resolved spec: frozen values the loader produces and the planner consumes.

By the time a `Spec` exists, includes are merged, `${var}`s are interpolated, templates and
defaults are applied, and every reference is qualified (`scene.shot`). Each node keeps
`where`, the source position it came from, so later stages can point errors at YAML lines.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """`text` with every control character written as an escape (`\\x07`), so nothing read
    from a spec can drive the terminal a message is printed on."""
    if not _CONTROLS.search(text):
        return text
    return _CONTROLS.sub(lambda m: (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                    else f"\\u{ord(m[0]):04x}"), text)


@dataclass(frozen=True)
class Where:
    """A position in a spec file, and the JSON path of the node (`$.scenes[0].shots[2]`)."""

    file: str
    line: int = 0   # 1-based; 0 = unknown
    col: int = 0    # 1-based
    path: str = "$"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    """One error or warning about a spec, printed as `file:line:col: error: message [at path]`."""

    where: Where
    message: str
    severity: str = "error"  # error | warning

    def __post_init__(self) -> None:
        # Messages quote spec text (and an included file's name is spec text too).
        object.__setattr__(self, "message", escape_controls(self.message))
        w = self.where
        file, path = escape_controls(w.file), escape_controls(w.path)
        if (file, path) != (w.file, w.path):
            object.__setattr__(self, "where", Where(file, w.line, w.col, path))

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message} [at {self.where.path}]"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class Asset:
    """A named input: a file inside the project (`path`, absolute on disk as `file`) or a
    public http(s) `url`."""

    name: str
    where: Where
    path: str | None = None   # as written, relative to the declaring file
    file: str | None = None   # resolved absolute path on disk
    url: str | None = None

    @property
    def is_local(self) -> bool:
        return self.file is not None


@dataclass(frozen=True)
class ShotRef:
    """Another shot's output: its whole clip (`frame=None`) or its first/last frame."""

    shot: str                # qualified id, `scene.shot`
    frame: str | None = None  # first | last | None


FRAME_ROLES = ("first_frame", "last_frame", "first_clip")
REFERENCE_ROLES = ("reference_image", "reference_video", "reference_audio")


@dataclass(frozen=True)
class Input:
    """One media input of a shot, in the order it is sent.

    role: first_frame | last_frame | first_clip | reference_image | reference_video |
          reference_audio | driving_audio | video (the clip an edit restyles, `source:`) |
          file (a document, `document:`). Exactly one of `asset` and `ref` is set.
    """

    role: str
    asset: str | None = None
    ref: ShotRef | None = None
    voice: str | None = None         # asset name of a reference_voice (wan2.7-r2v)
    description: str | None = None   # reference_description (wan2.7-r2v)


@dataclass(frozen=True)
class Shot:
    scene: str
    id: str
    model: str
    where: Where
    prompt: str = ""
    negative_prompt: str | None = None
    duration: int | str | None = None   # seconds, or "auto" (Wan 3.0) / "source" (videoedit)
    resolution: str | None = None
    ratio: str | None = None
    size: str | None = None
    seed: int | None = None
    prompt_extend: bool | None = None
    watermark: bool | None = None
    shot_type: str | None = None
    audio: str | None = None            # asset name: driving / lip-sync audio (audio_url)
    generate_audio: bool | None = None  # parameters.audio (false = silent) where supported
    effect: str | None = None           # input.template (effect mode of i2v/kf2v)
    enable_thinking: bool | None = None
    audio_setting: str | None = None    # videoedit: auto | origin (keep the source's sound)
    link: str | None = None             # a public web page the model reads (Wan 3.0)
    inputs: tuple[Input, ...] = ()
    takes: int = 1
    pick: int = 1
    needs: tuple[str, ...] = ()         # qualified shot ids
    path: str | None = None             # optional place to materialise the picked take
    template: str | None = None         # name of the template used, for messages only

    @property
    def qid(self) -> str:
        return f"{self.scene}.{self.id}"


@dataclass(frozen=True)
class Transition:
    type: str = "cut"       # cut | crossfade
    seconds: float = 0.0


@dataclass(frozen=True)
class AudioBed:
    """Audio laid under an assembled scene or film."""

    asset: str
    volume: float = 1.0
    duck: float | None = None   # gain applied to the clips' own audio under the bed
    loop: bool = False          # repeat a bed shorter than what it lies under
    fade: float | None = None   # seconds to fade out at its end (or the assembly's)


@dataclass(frozen=True)
class Scene:
    id: str
    where: Where
    shots: tuple[Shot, ...] = ()
    transition: Transition = Transition()
    audio: AudioBed | None = None
    path: str | None = None    # optional output path, relative to the spec's directory


@dataclass(frozen=True)
class Film:
    id: str
    path: str                  # output path, relative to the spec's directory
    where: Where
    scenes: tuple[str, ...] = ()
    transition: Transition = Transition()
    audio: AudioBed | None = None
    resolution: str | None = None  # target geometry; default: the first scene's
    ratio: str | None = None
    size: str | None = None        # "W*H": wins over resolution and ratio
    fps: int | None = None


@dataclass(frozen=True)
class ModelLimit:
    model: str
    concurrency: int | None = None
    submit_rps: float | None = None


@dataclass(frozen=True)
class SpecSettings:
    """The spec's `settings:` (the command line and environment may override them).

    No base URL: a spec from a pull request must not choose where the API key is sent."""

    backend: str = "auto"          # auto | preview | dashscope
    region: str | None = None      # beijing | singapore | virginia | hongkong | tokyo | frankfurt
    cache: str | None = None       # store directory, relative to the spec's directory
    max_cost: float | None = None
    limits: tuple[ModelLimit, ...] = ()
    accept_status: tuple[str, ...] = ()   # model statuses used on purpose: preview, legacy


@dataclass(frozen=True)
class Spec:
    file: str                      # absolute path of the top-level spec
    root: str                      # project directory: assets must stay inside it
    name: str
    version: int = 1
    assets: dict[str, Asset] = field(default_factory=dict)
    scenes: tuple[Scene, ...] = ()
    films: tuple[Film, ...] = ()
    settings: SpecSettings = SpecSettings()
    files: tuple[str, ...] = ()    # every file loaded (spec + includes)
    warnings: tuple[Diagnostic, ...] = ()
    library: bool = False          # a library file checked on its own (no scenes)
    templates: tuple[str, ...] = ()   # names of the templates declared
    variables: tuple[str, ...] = ()   # names of the vars declared

    def shots(self) -> Iterator[Shot]:
        for scene in self.scenes:
            yield from scene.shots

    def shot(self, qid: str) -> Shot | None:
        scene_id, _, shot_id = qid.partition(".")
        for scene in self.scenes:
            if scene.id == scene_id:
                for shot in scene.shots:
                    if shot.id == shot_id:
                        return shot
        return None
