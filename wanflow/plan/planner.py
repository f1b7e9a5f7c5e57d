"""The planner: a pure function from a resolved spec to a DAG of typed tasks.

No file, network or clock access here (ninja's Plan, doit's task list). Keys depend on the
content of inputs, and some inputs (another shot's last frame) exist only once upstream
work has run, so a plan holds tasks, and `Plan.prepare` makes one concrete — key material,
key, request — once its inputs' outputs are known.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from .. import models
from ..errors import UsageError
from ..spec.nodes import Scene, Spec, Transition
from . import request
from .graph import Graph
from .prepare import Prepared, prepare
from .tasks import AssembleTask, AssetTask, FrameTask, GenTask, Output, Task, TaskId

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class Plan:
    spec: Spec
    backend: str                    # backend identity, part of every generation key
    tasks: dict[TaskId, Task] = field(default_factory=dict)   # in dependency order
    picks: dict[str, int] = field(default_factory=dict)       # shot qid -> picked take
    only: tuple[str, ...] = ()      # targets the plan was restricted to, if any
    notes: tuple[str, ...] = ()     # choices people should know of (a mixed scene's size)

    @cached_property
    def dag(self) -> Graph[TaskId]:
        return Graph({tid: task.deps for tid, task in self.tasks.items()})

    @property
    def graph(self) -> nx.DiGraph:  # edges dep -> task, for analysis and export
        return self.dag.to_networkx()

    def levels(self) -> list[list[TaskId]]:
        """Task ids grouped so that each group depends only on earlier groups."""
        return [sorted(group) for group in self.dag.levels()]

    def dependents(self, task_id: TaskId) -> set[TaskId]:
        return self.dag.descendants(task_id)

    def prepare(self, task: Task, outputs: Mapping[TaskId, Output]) -> Prepared | None:
        return prepare(task, outputs, backend=self.backend, picks=self.picks)

    def gen_tasks(self) -> list[GenTask]:
        return [t for t in self.tasks.values() if isinstance(t, GenTask)]


def _scene_geometry(scene: Scene) -> tuple[int, int, int]:
    shot = scene.shots[0]
    info = models.lookup(shot.model)
    assert info is not None   # the checker refuses unknown models
    _, w, h = request.geometry(shot, info)
    return w, h, info.fps


def build(spec: Spec, backend: str, only: tuple[str, ...] = ()) -> Plan:
    """Turn a resolved spec into a plan for `backend` (its identity string).

    `only` restricts the plan to targets (`scene`, `scene.shot`, or a film id) and what they
    need.
    """
    picks = {shot.qid: shot.pick for shot in spec.shots()}
    tasks: dict[TaskId, Task] = {}

    def use_asset(name: str) -> TaskId:
        tid = TaskId.asset(name)
        if tid not in tasks:
            tasks[tid] = AssetTask(id=tid, asset=spec.assets[name])
        return tid

    cues = _cues(spec)
    frames: dict[TaskId, Task] = {}
    for shot in spec.shots():
        sources = request.input_sources(shot, picks)
        for source in sources:
            if source.kind == "asset":
                use_asset(source.name)
            elif source.kind == "frame" and source not in frames:
                frames[source] = FrameTask(id=source, deps=(source.clip,),
                                           inputs=(source.clip,), which=source.frame)
        needs = tuple(TaskId.gen(q, picks[q]) for q in shot.needs)
        info = models.lookup(shot.model)
        assert info is not None
        _, w, h = request.geometry(shot, info)
        for take in range(1, shot.takes + 1):
            tid = TaskId.gen(shot.qid, take)
            path = shot.path if (shot.path and take == shot.pick) else None
            tasks[tid] = GenTask(id=tid, deps=tuple(sources) + needs, inputs=tuple(sources),
                                 shot=shot, take=take, path=path, width=w, height=h,
                                 fps=info.fps, cue=cues.get(shot.qid))
    tasks.update(frames)

    for scene in spec.scenes:
        clips = tuple(TaskId.gen(s.qid, s.pick) for s in scene.shots)
        bed = (use_asset(scene.audio.asset),) if scene.audio else ()
        w, h, fps = _scene_geometry(scene)
        tid = TaskId.scene(scene.id)
        tasks[tid] = AssembleTask(id=tid, deps=clips + bed, inputs=clips + bed,
                                  path=scene.path, clips=clips, scene=scene,
                                  transition=scene.transition, bed=scene.audio,
                                  width=w, height=h, fps=fps)

    scenes = {s.id: s for s in spec.scenes}
    for film in spec.films:
        parts = tuple(TaskId.scene(sid) for sid in film.scenes)
        bed = (use_asset(film.audio.asset),) if film.audio else ()
        w, h, fps = _scene_geometry(scenes[film.scenes[0]])
        if film.size:
            w, h = models.dimensions(film.size)
        elif film.resolution or film.ratio:
            tier = film.resolution or models.SIZE_TIER.get(f"{w}*{h}", "720P")
            size = models.size_of(tier, film.ratio or models.DEFAULT_RATIO) or f"{w}*{h}"
            w, h = models.dimensions(size)
        fps = film.fps or fps
        tid = TaskId.film(film.id)
        tasks[tid] = AssembleTask(id=tid, deps=parts + bed, inputs=parts + bed,
                                  path=film.path, clips=parts, film=film,
                                  transition=film.transition, bed=film.audio,
                                  width=w, height=h, fps=fps)

    dag = Graph({tid: task.deps for tid, task in tasks.items()})
    # The checker has already refused cycles: one here is a bug, and CycleError says so.
    plan = Plan(spec=spec, backend=backend, tasks={tid: tasks[tid] for tid in dag.order()},
                picks=picks, notes=geometry_notes(spec, tasks))
    if not only:
        return plan
    keep = select(plan, only)
    return Plan(spec=spec, backend=backend,
                tasks={t: task for t, task in plan.tasks.items() if t in keep},
                picks=picks, only=tuple(only), notes=plan.notes)


def _overlap(transition: Transition) -> float:
    return transition.seconds if transition.type == "crossfade" else 0.0


def _cues(spec: Spec) -> dict[str, request.Cue]:
    """Where each shot starts in its scene, and in the first film that shows the scene
    (clips overlap by their crossfades). Past a clip whose length the model chooses
    (`duration: auto`) a start is unknown, and left out."""
    scene_starts: dict[str, dict[str, float | None]] = {}
    scene_lengths: dict[str, float | None] = {}
    for scene in spec.scenes:
        t: float | None = 0.0
        starts: dict[str, float | None] = {}
        for shot in scene.shots:
            info = models.lookup(shot.model)
            assert info is not None   # the checker refuses unknown models
            starts[shot.qid] = t
            length = info.clip_seconds(shot.duration)
            t = None if t is None or length is None else t + length - _overlap(scene.transition)
        scene_starts[scene.id] = starts
        scene_lengths[scene.id] = None if t is None else \
            t + (_overlap(scene.transition) if scene.shots else 0.0)
    film_starts: dict[str, float | None] = {}
    for film in spec.films:
        f: float | None = 0.0
        for sid in film.scenes:
            film_starts.setdefault(sid, f)
            length = scene_lengths.get(sid, 0.0)
            f = None if f is None or length is None else f + length - _overlap(film.transition)
    cues: dict[str, request.Cue] = {}
    for scene in spec.scenes:
        for qid, start in scene_starts[scene.id].items():
            in_film = film_starts.get(scene.id)
            cues[qid] = request.Cue(
                None if start is None else round(start, 3),
                None if start is None or in_film is None else round(in_film + start, 3))
    return cues


def _format(w: int, h: int, fps: int) -> str:
    return f"{w}x{h} at {fps} fps"


def geometry_notes(spec: Spec, tasks: Mapping[TaskId, Task]) -> tuple[str, ...]:
    """Which size and frame rate each scene and film of mixed clips is assembled at, and
    why: clips of another size are letterboxed and another rate has frames repeated or
    dropped, which a reviewer should hear from the plan rather than notice in the cut."""
    notes = []
    formats: dict[str, tuple[int, int, int]] = {}
    for scene in spec.scenes:
        task = tasks[TaskId.scene(scene.id)]
        assert isinstance(task, AssembleTask)
        formats[scene.id] = (task.width, task.height, task.fps)
        clips = {(c.width, c.height, c.fps) for c in (tasks[t] for t in task.clips)
                 if isinstance(c, GenTask)}
        if len(clips) > 1:
            kinds = " and ".join(sorted(_format(*c) for c in clips))
            notes.append(f"scene {scene.id} joins clips of {kinds}; it is assembled at "
                         f"{_format(*formats[scene.id])}, the format of its first shot "
                         f"{scene.shots[0].qid} (the others are letterboxed and retimed)")
    for film in spec.films:
        task = tasks[TaskId.film(film.id)]
        assert isinstance(task, AssembleTask)
        parts = {formats[sid] for sid in film.scenes}
        chosen = (task.width, task.height, task.fps)
        if len(parts) < 2 and chosen in parts:
            continue
        why = []
        if film.size or film.resolution or film.ratio:
            why.append("its size as the film says")
        if film.fps:
            why.append("its frame rate as the film says")
        if len(why) < 2:
            why.append(f"{'the rest' if why else 'the format'} of its first scene "
                       f"{film.scenes[0]}")
        mixed = (f"joins scenes of {' and '.join(sorted(_format(*p) for p in parts))}; "
                 if len(parts) > 1 else "")
        hint = ("" if film.size and film.fps
                else ' (set size: "W*H" and fps: N on the film to choose)')
        notes.append(f"film {film.id} {mixed}it is made at {_format(*chosen)}: "
                     f"{', '.join(why)}{hint}")
    return tuple(notes)


def select(plan: Plan, only: tuple[str, ...]) -> frozenset[TaskId]:
    """The tasks `only`'s targets (`scene`, `scene.shot`, or a film id) need, themselves
    included; every task when `only` is empty."""
    if not only:
        return frozenset(plan.tasks)
    roots = [t for target in only for t in _targets(plan.spec, plan.tasks, target)]
    return frozenset(plan.dag.ancestors(roots))


def _targets(spec: Spec, tasks: dict[TaskId, Task], target: str) -> list[TaskId]:
    for tid in (TaskId.film(target), TaskId.scene(target)):
        if tid in tasks:
            return [tid]
    shot = spec.shot(target) if "." in target else None
    if shot is not None:
        return [TaskId.gen(shot.qid, t) for t in range(1, shot.takes + 1)]
    known = [s.id for s in spec.scenes] + [s.qid for s in spec.shots()] + [f.id for f in spec.films]
    close = difflib.get_close_matches(target, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"--only {target!r} names no scene, shot (scene.shot) or film{hint}")
