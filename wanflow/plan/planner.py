"""The planner: a pure function from a resolved spec to a DAG of tasks.

No file, network or clock access here (ninja's Plan, doit's task list). A task's key
depends on its inputs' content hashes, and some inputs (a frame of another shot) only
exist once upstream work has run; so the plan holds *recipes*, and `material()` turns a
recipe plus the known upstream outputs into the exact key material — or None while an
upstream output is still unknown.
"""
from __future__ import annotations

import difflib
import posixpath
from collections import deque
from dataclasses import dataclass, field

from . import keys, request
from .. import models
from ..errors import UsageError
from ..spec.nodes import Asset, AudioBed, Film, Scene, Shot, Spec, Transition

KINDS = ("asset", "gen", "frame", "scene", "film")

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".bmp": "image/bmp",
         ".webp": "image/webp", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
         ".mp4": "video/mp4", ".mov": "video/quicktime"}


def mime_of(name: str) -> str:
    return _MIME.get(posixpath.splitext(name.lower().split("?")[0])[1], "application/octet-stream")


@dataclass(frozen=True)
class Task:
    """One node of the plan. Exactly the fields of its kind are set."""

    id: str
    kind: str                       # asset | gen | frame | scene | film
    deps: tuple[str, ...] = ()      # tasks that must finish first (data and ordering)
    inputs: tuple[str, ...] = ()    # the data deps, in the order their outputs are used
    path: str | None = None         # where to materialise the output, relative to the spec dir
    asset: Asset | None = None
    shot: Shot | None = None
    take: int = 0
    frame: str | None = None        # frame tasks: first | last
    scene: Scene | None = None
    film: Film | None = None
    transition: Transition = Transition()
    bed: AudioBed | None = None
    width: int = 0
    height: int = 0
    fps: int = 0

    @property
    def label(self) -> str:
        return self.id.split(":", 1)[1]

    @property
    def remote(self) -> bool:
        return self.kind == "gen"


@dataclass(frozen=True)
class Output:
    """What a finished task produced, as far as downstream keys care."""

    digest: str
    mime: str
    duration: float | None = None


@dataclass(frozen=True)
class Plan:
    spec: Spec
    backend: str                    # backend identity, part of every generation key
    tasks: dict = field(default_factory=dict)   # id -> Task, in topological order
    picks: dict = field(default_factory=dict)   # shot qid -> picked take
    only: tuple = ()                # targets the plan was restricted to, if any

    @property
    def graph(self):
        """The DAG as a networkx DiGraph (edges dep -> task), for analysis and export."""
        return _digraph(self.tasks)

    def generations(self) -> list[list[str]]:
        """Task ids grouped so that each group depends only on earlier groups."""
        level: dict[str, int] = {}
        for tid, task in self.tasks.items():   # tasks are in topological order
            level[tid] = 1 + max((level[d] for d in task.deps if d in level), default=-1)
        groups: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for tid, n in level.items():
            groups[n].append(tid)
        return [sorted(g) for g in groups]

    def dependents(self, task_id: str) -> set[str]:
        import networkx as nx

        return nx.descendants(self.graph, task_id)

    def request(self, task: Task, outputs: dict) -> request.GenRequest | None:
        """The generation request of a gen task, or None while an input is unknown."""
        blobs = {}
        for source in task.inputs:
            out = outputs.get(source)
            if out is None:
                return None
            url = None
            if source.startswith("asset:"):
                url = self.spec.assets[source[6:]].url
            blobs[source] = request.Blob(out.digest, out.mime, url)
        return request.build(task.shot, task.take, blobs, self.picks)

    def material(self, task: Task, outputs: dict) -> dict | None:
        """The key material of `task` given upstream outputs (task id -> Output)."""
        if task.kind == "asset":
            out = outputs.get(task.id)
            if task.asset.url and out is None:
                return {"kind": "asset", "url": task.asset.url}
            return {"kind": "asset", "digest": out.digest if out else None}
        if task.kind == "gen":
            req = self.request(task, outputs)
            if req is None:
                return None
            return {"kind": "gen", "backend": self.backend, "take": task.take,
                    "endpoint": req.endpoint, "request": req.body}
        ins = [outputs.get(i) for i in task.inputs]
        if any(o is None for o in ins):
            return None
        if task.kind == "frame":
            return {"kind": "frame", "clip": ins[0].digest, "frame": task.frame}
        clips = [o.digest for o, i in zip(ins, task.inputs) if not i.startswith("asset:")]
        bed = None
        if task.bed is not None:
            bed = {"audio": outputs[f"asset:{task.bed.asset}"].digest,
                   "volume": task.bed.volume, "duck": task.bed.duck}
        return {"kind": task.kind, "clips": clips,
                "transition": [task.transition.type, task.transition.seconds],
                "bed": bed, "width": task.width, "height": task.height, "fps": task.fps}

    def key(self, task: Task, outputs: dict) -> str | None:
        m = self.material(task, outputs)
        return None if m is None else keys.key_of(m)

    def output_mime(self, task: Task) -> str:
        if task.kind == "asset":
            return mime_of(task.asset.path or task.asset.url or "")
        return "image/png" if task.kind == "frame" else "video/mp4"

    def estimate(self, task: Task) -> tuple[float, float | None]:
        """(billed seconds, price per second) a gen task would cost on a paid backend."""
        if task.kind != "gen":
            return 0.0, None
        shot = task.shot
        info = models.lookup(shot.model)
        tier, _, _ = request.geometry(shot, info)
        seconds = 5.0 if info.kind == "kf2v" else float(shot.duration or info.default_duration)
        return seconds, models.price_per_second(shot.model, tier)


def _gen_id(qid: str, take: int) -> str:
    return f"gen:{qid}#{take}"


def _scene_geometry(scene: Scene) -> tuple[int, int, int]:
    shot = scene.shots[0]
    info = models.lookup(shot.model)
    _, w, h = request.geometry(shot, info)
    return w, h, info.fps


def build(spec: Spec, backend: str, only: tuple[str, ...] = ()) -> Plan:
    """Turn a resolved spec into a plan for `backend` (its identity string).

    `only` restricts the plan to targets (`scene`, `scene.shot`, or a film id) and what they
    need.
    """
    picks = {shot.qid: shot.pick for shot in spec.shots()}
    tasks: dict[str, Task] = {}

    def use_asset(name: str) -> str:
        tid = request.asset_source(name)
        if tid not in tasks:
            tasks[tid] = Task(id=tid, kind="asset", asset=spec.assets[name])
        return tid

    frames: dict[str, Task] = {}
    for shot in spec.shots():
        sources = request.input_sources(shot, picks)
        for source in sources:
            if source.startswith("asset:"):
                use_asset(source[6:])
            elif source.startswith("frame:") and source not in frames:
                clip, frame = source[6:].rsplit(":", 1)
                gen = "gen:" + clip
                frames[source] = Task(id=source, kind="frame", deps=(gen,), inputs=(gen,),
                                      frame=frame)
        needs = tuple(_gen_id(q, picks[q]) for q in shot.needs)
        info = models.lookup(shot.model)
        _, w, h = request.geometry(shot, info)
        for take in range(1, shot.takes + 1):
            tid = _gen_id(shot.qid, take)
            path = shot.path if (shot.path and take == shot.pick) else None
            tasks[tid] = Task(id=tid, kind="gen", deps=tuple(sources) + needs,
                              inputs=tuple(sources), shot=shot, take=take, path=path,
                              width=w, height=h, fps=info.fps)
    tasks.update(frames)

    for scene in spec.scenes:
        clips = tuple(_gen_id(s.qid, s.pick) for s in scene.shots)
        bed = (use_asset(scene.audio.asset),) if scene.audio else ()
        w, h, fps = _scene_geometry(scene)
        tid = f"scene:{scene.id}"
        tasks[tid] = Task(id=tid, kind="scene", deps=clips + bed, inputs=clips + bed,
                          path=scene.path, scene=scene, transition=scene.transition,
                          bed=scene.audio, width=w, height=h, fps=fps)

    scenes = {s.id: s for s in spec.scenes}
    for film in spec.films:
        parts = tuple(f"scene:{sid}" for sid in film.scenes)
        bed = (use_asset(film.audio.asset),) if film.audio else ()
        w, h, fps = _scene_geometry(scenes[film.scenes[0]])
        if film.resolution or film.ratio:
            tier = film.resolution or models.SIZE_TIER.get(f"{w}*{h}", "720P")
            size = models.size_of(tier, film.ratio or "16:9") or f"{w}*{h}"
            w, h = models.dimensions(size)
        tid = f"film:{film.id}"
        tasks[tid] = Task(id=tid, kind="film", deps=parts + bed, inputs=parts + bed,
                          path=film.path, film=film, transition=film.transition,
                          bed=film.audio, width=w, height=h, fps=fps)

    if only:
        keep: set[str] = set()
        for target in only:
            keep.update(_with_ancestors(tasks, _targets(spec, tasks, target)))
        tasks = {t: task for t, task in tasks.items() if t in keep}
    return Plan(spec=spec, backend=backend, tasks=_topological(tasks), picks=picks,
                only=tuple(only))


def _topological(tasks: dict[str, Task]) -> dict[str, Task]:
    """`tasks` reordered so every task follows its deps (Kahn's algorithm, stable order).

    The checker has already rejected cycles; one here is a bug, reported as such.
    """
    waiting = {t: sum(1 for d in task.deps if d in tasks) for t, task in tasks.items()}
    dependents: dict[str, list[str]] = {t: [] for t in tasks}
    for t, task in tasks.items():
        for d in task.deps:
            if d in tasks:
                dependents[d].append(t)
    ready = deque(t for t, n in waiting.items() if n == 0)
    ordered: dict[str, Task] = {}
    while ready:
        t = ready.popleft()
        ordered[t] = tasks[t]
        for nxt in dependents[t]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
    if len(ordered) != len(tasks):
        import networkx as nx

        cycle = nx.find_cycle(_digraph(tasks))
        raise ValueError(f"dependency cycle in the plan: {cycle}")
    return ordered


def _with_ancestors(tasks: dict[str, Task], roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        t = stack.pop()
        if t not in seen:
            seen.add(t)
            stack.extend(d for d in tasks[t].deps if d in tasks)
    return seen


def _digraph(tasks: dict[str, Task]):
    # networkx costs ~0.2 s to import: only commands that analyse the graph pay for it.
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(tasks)
    graph.add_edges_from((d, t) for t, task in tasks.items() for d in task.deps if d in tasks)
    return graph


def _targets(spec: Spec, tasks: dict, target: str) -> list[str]:
    if f"film:{target}" in tasks:
        return [f"film:{target}"]
    if f"scene:{target}" in tasks:
        return [f"scene:{target}"]
    shot = spec.shot(target) if "." in target else None
    if shot is not None:
        return [_gen_id(shot.qid, t) for t in range(1, shot.takes + 1)]
    known = [s.id for s in spec.scenes] + [s.qid for s in spec.shots()] + [f.id for f in spec.films]
    close = difflib.get_close_matches(target, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"--only {target!r} names no scene, shot (scene.shot) or film{hint}")
