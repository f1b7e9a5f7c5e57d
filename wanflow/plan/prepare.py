"""What a task will do, exactly: its key material, its key and (for a generation) its request.

`prepare` is called once per task per run — by the assessment when the task's inputs are
already known, else by the executor when they become known — and its result is carried to
wherever it is needed (state, budget, submit, result record). Pure: no file, network or
clock access.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import cost, keys, request
from .request import GenRequest
from .tasks import AssembleTask, AssetTask, FrameTask, GenTask, Output, Task, TaskId


@dataclass(frozen=True)
class Prepared:
    """A task made concrete: key material and key, plus the request of a generation and
    the seconds the provider would bill for it."""

    key: str
    material: dict[str, Any] = field(hash=False, compare=False)   # JSON
    request: GenRequest | None = None
    billed_seconds: float = 0.0


def prepare(task: Task, outputs: Mapping[TaskId, Output], *, backend: str,
            picks: Mapping[str, int]) -> Prepared | None:
    """`task` made concrete from its inputs' outputs; None while one of them is unknown."""
    if isinstance(task, AssetTask):
        out = outputs.get(task.id)
        if out is None and task.asset.url:   # fetched later; keyed by its URL until then
            material: dict[str, Any] = {"kind": "asset", "url": task.asset.url}
        else:
            material = {"kind": "asset", "digest": out.digest if out else None}
        return Prepared(keys.key_of(material), material)
    known: dict[TaskId, Output] = {}
    for source in task.inputs:
        found = outputs.get(source)
        if found is None:
            return None
        known[source] = found
    if isinstance(task, GenTask):
        return _prepare_gen(task, known, backend, picks)
    if isinstance(task, FrameTask):
        material = {"kind": "frame", "clip": known[task.inputs[0]].digest,
                    "frame": task.which}
        return Prepared(keys.key_of(material), material)
    assert isinstance(task, AssembleTask)
    bed = None
    if task.bed is not None and task.bed_input is not None:
        bed = {"audio": known[task.bed_input].digest, "volume": task.bed.volume,
               "duck": task.bed.duck}
        # Only when set: beds that say neither keep the keys they always had.
        if task.bed.loop:
            bed["loop"] = True
        if task.bed.fade is not None:
            bed["fade"] = task.bed.fade
    material = {"kind": task.kind, "clips": [known[c].digest for c in task.clips],
                "transition": [task.transition.type, task.transition.seconds],
                "bed": bed, "width": task.width, "height": task.height, "fps": task.fps}
    return Prepared(keys.key_of(material), material)


def _prepare_gen(task: GenTask, known: dict[TaskId, Output], backend: str,
                 picks: Mapping[str, int]) -> Prepared:
    blobs = {source: request.Blob(out.digest, out.mime, out.url, out.duration)
             for source, out in known.items()}
    req = request.build(task.shot, task.take, blobs, picks, cue=task.cue)
    material = {"kind": "gen", "backend": backend, "take": task.take,
                "endpoint": req.endpoint, "request": req.body}
    seconds = cost.billed_seconds(task, known, picks, {})
    return Prepared(keys.key_of(material), material, req, seconds)
