"""The nodes of a plan: task ids and the four kinds of task.

A task id is a value with a documented text form — `asset:NAME`, `gen:SCENE.SHOT#TAKE`,
`frame:SCENE.SHOT#TAKE:first|last`, `scene:ID`, `film:ID` — used in the lock file, the
journal, `--json` output and messages. `TaskId` is a `str` whose parts are parsed once, here:
it compares, hashes and serialises like its text (so a lock file or a test can name tasks by
text) while code reads `.kind`, `.name`, `.take` and `.frame` instead of slicing strings.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from ..spec.nodes import Asset, AudioBed, Film, Scene, Shot, Transition
from ..spec.paths import preview_variant

if TYPE_CHECKING:
    from .request import Cue

KINDS = ("asset", "gen", "frame", "scene", "film")
FRAMES = ("first", "last")

_GRAMMAR = re.compile(
    r"(?P<kind>asset|scene|film):(?P<name>[^\s#:]+)\Z"
    r"|(?P<gkind>gen):(?P<gname>[^\s#:]+)#(?P<gtake>[1-9][0-9]*)\Z"
    r"|(?P<fkind>frame):(?P<fname>[^\s#:]+)#(?P<ftake>[1-9][0-9]*):(?P<which>first|last)\Z")


class TaskId(str):
    """A task id: the text form plus its parsed parts (kind, name, take, frame)."""

    kind: str
    name: str     # asset name, `scene.shot`, scene id or film id
    take: int     # gen and frame tasks; 0 otherwise
    frame: str    # frame tasks: first | last; "" otherwise

    def __new__(cls, text: str) -> Self:
        if isinstance(text, cls):
            return text
        m = _GRAMMAR.match(text)
        if m is None:
            raise ValueError(f"not a task id: {text!r} (expected asset:NAME, "
                             "gen:SCENE.SHOT#TAKE, frame:SCENE.SHOT#TAKE:first|last, "
                             "scene:ID or film:ID)")
        if m.group("kind"):
            return cls._make(text, m.group("kind"), m.group("name"))
        if m.group("gkind"):
            return cls._make(text, "gen", m.group("gname"), int(m.group("gtake")))
        return cls._make(text, "frame", m.group("fname"), int(m.group("ftake")),
                         m.group("which"))

    @classmethod
    def _make(cls, text: str, kind: str, name: str, take: int = 0, frame: str = "") -> Self:
        self = super().__new__(cls, text)
        object.__setattr__(self, "__dict__",
                           {"kind": kind, "name": name, "take": take, "frame": frame})
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TaskId is immutable")

    def __reduce__(self) -> tuple[type[TaskId], tuple[str]]:
        return (TaskId, (str(self),))

    # -- constructors: the one place the grammar is written -----------------------------

    # The spec's ids are already checked against the id pattern, so these skip the parse.

    @classmethod
    def asset(cls, name: str) -> TaskId:
        return cls._make(f"asset:{name}", "asset", name)

    @classmethod
    def gen(cls, qid: str, take: int) -> TaskId:
        return cls._make(f"gen:{qid}#{take}", "gen", qid, take)

    @classmethod
    def frame_of(cls, qid: str, take: int, which: str) -> TaskId:
        return cls._make(f"frame:{qid}#{take}:{which}", "frame", qid, take, which)

    @classmethod
    def scene(cls, scene_id: str) -> TaskId:
        return cls._make(f"scene:{scene_id}", "scene", scene_id)

    @classmethod
    def film(cls, film_id: str) -> TaskId:
        return cls._make(f"film:{film_id}", "film", film_id)

    @classmethod
    def parse(cls, text: str) -> TaskId | None:
        """The id `text` spells, or None if it spells none."""
        try:
            return cls(text)
        except ValueError:
            return None

    # -- views ----------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """The id without its kind (`chase.wide#1`), for progress lines and cards."""
        return self.split(":", 1)[1]

    @property
    def clip(self) -> TaskId:
        """The generation a frame task is taken from (a gen task's own id)."""
        return TaskId.gen(self.name, self.take) if self.kind == "frame" else self


@dataclass(frozen=True)
class Output:
    """What a finished task produced, as far as downstream keys care."""

    digest: str
    mime: str
    duration: float | None = None
    url: str | None = None   # where the provider can fetch it itself (https assets)


@dataclass(frozen=True, kw_only=True)
class Task:
    """A node of the plan. `deps` orders it; `inputs` are the deps whose outputs it reads,
    in the order it reads them; `path` is where its output is materialised, if anywhere."""

    id: TaskId
    deps: tuple[TaskId, ...] = ()
    inputs: tuple[TaskId, ...] = ()
    path: str | None = None

    @property
    def kind(self) -> str:
        return self.id.kind

    @property
    def remote(self) -> bool:
        """Whether the task runs at a backend (and may cost money)."""
        return False

    @property
    def output_mime(self) -> str:
        return "video/mp4"


@dataclass(frozen=True, kw_only=True)
class AssetTask(Task):
    """Bring a named input into the store: hash a local file, or fetch an https URL."""

    asset: Asset

    @property
    def output_mime(self) -> str:
        return mime_of(self.asset.path or self.asset.url or "")


@dataclass(frozen=True, kw_only=True)
class GenTask(Task):
    """One take of a shot, generated by the backend."""

    shot: Shot
    take: int
    width: int
    height: int
    fps: int
    cue: Cue | None = None   # where it falls in its scene and film (preview cards only)

    @property
    def remote(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class FrameTask(Task):
    """The first or last frame of a generated clip, as a PNG (continuity between shots)."""

    which: str   # first | last

    @property
    def output_mime(self) -> str:
        return "image/png"


@dataclass(frozen=True, kw_only=True)
class AssembleTask(Task):
    """A scene from its shots' picked takes, or a film from its scenes, with an audio bed."""

    clips: tuple[TaskId, ...]
    transition: Transition
    bed: AudioBed | None
    width: int
    height: int
    fps: int
    scene: Scene | None = None
    film: Film | None = None

    @property
    def bed_input(self) -> TaskId | None:
        return TaskId.asset(self.bed.asset) if self.bed is not None else None


def render_path(path: str, paid: bool) -> str:
    """Where an output the spec names goes: the path itself for paid work, and beside it
    with `.preview` before the extension for preview work — so that a preview never
    overwrites a paid render (`renders/film.mp4` -> `renders/film.preview.mp4`). The spec's
    path rules use the same function, so neither may land on an input."""
    return path if paid else preview_variant(path)


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".bmp": "image/bmp",
         ".webp": "image/webp", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
         ".mp4": "video/mp4", ".mov": "video/quicktime", ".pdf": "application/pdf",
         ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
_EXTENSION = {mime: ext for ext, mime in reversed(_MIME.items())}   # the first spelling wins


def mime_of(name: str) -> str:
    """The media type a file name or URL path suggests."""
    return _MIME.get(posixpath.splitext(name.lower().split("?")[0])[1],
                     "application/octet-stream")


def extension_of(mime: str) -> str:
    """The file extension of a media type, as `mime_of` reads it back ("" if unknown)."""
    return _EXTENSION.get(mime, "")
