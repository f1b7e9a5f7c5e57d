"""The tasks a run does on this machine: bring an asset into the store, take a frame of a
clip, assemble a scene or a film. Each runs in a worker thread and returns the stored result.

Inputs are read from the store only after their digest is checked again: a cache may be
restored from elsewhere, and a corrupt clip must never be built into a scene.
"""
from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Mapping

from ..errors import MediaError
from ..plan import keys
from ..plan.prepare import Prepared
from ..plan.tasks import AssembleTask, AssetTask, FrameTask, Output, Task, TaskId
from ..store import Result, Store
from ..store.fs import unlink_quiet


def run_local(task: Task, prepared: Prepared, store: Store,
              outputs: Mapping[TaskId, Output]) -> Result:
    if isinstance(task, AssetTask):
        return _asset(task, prepared, store)
    from .. import media  # PyAV and numpy load only when there is media work to do

    meta: dict = {"material": prepared.material, "kind": task.kind}
    tmp = store.objects.temp_path(".png" if isinstance(task, FrameTask) else ".mp4")
    try:
        if isinstance(task, FrameTask):
            media.extract_frame(verified_input(store, task, outputs[task.inputs[0]]), tmp,
                                task.which)
        else:
            assert isinstance(task, AssembleTask)
            paths = [verified_input(store, task, outputs[c]) for c in task.clips]
            bed = None
            if task.bed is not None and task.bed_input is not None:
                bed = media.AudioBed(verified_input(store, task, outputs[task.bed_input]),
                                     volume=task.bed.volume, duck=task.bed.duck,
                                     loop=task.bed.loop, fade=task.bed.fade)
            joins = [(task.transition.type, task.transition.seconds)] * (len(paths) - 1)
            media.assemble(paths, tmp, transitions=joins, width=task.width,
                           height=task.height, fps=task.fps, bed=bed)
            probe = media.probe(tmp)
            meta.update(duration=round(probe.duration, 3), width=probe.width,
                        height=probe.height)
        digest, size = store.objects.put_file(tmp, move=True)
    finally:
        unlink_quiet(tmp)
    result = Result(key=prepared.key, task=task.id, digest=digest, size=size, meta=meta,
                    created=time.time())
    store.actions.put(result)
    return result


def verified_input(store: Store, task: Task, output: Output) -> str:
    """The store path of an input after re-hashing it (a corrupt object is removed)."""
    path = store.objects.verified_path(output.digest)
    if path is None:
        raise MediaError(f"{task.id}: an input ({output.digest[:12]}…) is missing or corrupt "
                         "in the cache and was removed; run again to regenerate it")
    return str(path)


def _asset(task: AssetTask, prepared: Prepared, store: Store) -> Result:
    material = prepared.material
    key = prepared.key
    if task.asset.file is not None:
        digest, size = store.objects.put_file(task.asset.file)
    else:
        assert task.asset.url is not None
        tmp = store.objects.temp_path(os.path.splitext(task.asset.url)[1][:8])
        try:
            fetch(task.asset.url, tmp)
            digest, size = store.objects.put_file(tmp, move=True)
        finally:
            unlink_quiet(tmp)
        material = {"kind": "asset", "digest": digest}
        key = keys.key_of(material)
    meta = {"material": material, "kind": "asset",
            "source": task.asset.path or task.asset.url}
    result = Result(key=key, task=task.id, digest=digest, size=size, meta=meta,
                    created=time.time())
    store.actions.put(result)
    return result


def fetch(url: str, dest: str) -> None:
    """Download an https asset (remote assets are pinned by content in the lock file)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except OSError as err:
        raise MediaError(f"cannot fetch asset {url}: {err}") from None
