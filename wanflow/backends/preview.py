"""The offline `preview` backend: an animatic for each generation, free and local.

It follows the same submit → wait → download protocol as DashScope, so the executor, the
journal and the store treat both alike. The animatic is rendered straight into the
download destination (the store's temporary file), so constructing the backend — as
`plan` and `status` do — touches no file. Its identity keeps preview outputs apart from
real ones in every key.

`scale` renders the animatics smaller than the model would (same duration, frame rate and
aspect): a quick look on a slow machine, and cheap media for tests. A scaled animatic is
different bytes, so the scale is part of the identity and keys such runs apart.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import os

from .. import models
from ..plan.request import GenRequest
from .base import BaseBackend, Finished, Submitted

_ids = itertools.count(1)


class PreviewBackend(BaseBackend):
    name = "preview"
    paid = False

    def __init__(self, *, delay: float = 0.0, scale: float = 1.0):
        self.delay = float(delay)   # extra seconds per task, to imitate slow generations
        self.scale = float(scale)   # fraction of the model's frame size to render at
        self.identity = "preview/1" if self.scale == 1 else f"preview/1@{self.scale:g}"
        self._jobs: dict[str, tuple[GenRequest, dict[str, str]]] = {}

    async def submit(self, request: GenRequest, files: dict[str, str], *,
                     before_send=None) -> Submitted:
        if before_send is not None:
            await before_send()
        remote_id = f"preview-{os.getpid()}-{next(_ids)}"
        self._jobs[remote_id] = (request, dict(files))
        return Submitted(remote_id=remote_id)

    async def wait(self, remote_id: str, request: GenRequest, *, elapsed: float = 0.0,
                   urgent=None) -> Finished:
        # A journaled id from an earlier process has no job here: render it again, it is free.
        self._jobs.setdefault(remote_id, (request, {}))
        if self.delay:
            await asyncio.sleep(self.delay)
        return Finished(remote_id=remote_id, request_id=None, video_url=None,
                        actual_prompt=None, usage={"duration": request.duration},
                        billed_seconds=request.duration)

    async def download(self, finished: Finished, dest: str) -> str:
        req, files = self._jobs.pop(finished.remote_id)
        await asyncio.to_thread(_render, req, files, dest, self.scale)
        return await asyncio.to_thread(_sha256, dest)

    async def cancel(self, remote_id: str) -> bool:
        return self._jobs.pop(remote_id, None) is not None


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    """`width`×`height` times `scale`, each rounded to an even number (4:2:0 video needs
    even sides). Preview clips and the scenes assembled from them use this one rule, so
    that assembly never has to resize a clip."""
    if scale == 1:
        return width, height
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def _render(req: GenRequest, files: dict[str, str], dest: str, scale: float) -> None:
    from .. import media  # PyAV loads only when something is rendered

    width, height = req.width, req.height
    audio = image = None
    for blob in req.blobs:
        path = files.get(blob.digest)
        if path and blob.mime.startswith("audio/") and audio is None:
            audio = path
        if path and blob.mime.startswith("image/") and image is None:
            image = path
    if req.aspect_from_input and image:
        width, height = _follow_aspect(req.resolution, media.image_size(image))
    width, height = scaled(width, height, scale)
    scene, _, rest = req.label.partition(".")
    shot, _, take = rest.partition("#")
    card = media.PreviewCard(scene=scene, shot=shot, take=int(take or 1),
                             prompt=req.body.get("input", {}).get("prompt", ""),
                             duration=req.duration, width=width, height=height,
                             fps=req.fps, model=req.model)
    media.render_preview(card, dest, audio=audio)


def _follow_aspect(tier: str, size: tuple[int, int]) -> tuple[int, int]:
    """The standard size of `tier` whose aspect is closest to the input image's."""
    w, h = size
    best = min((s for (t, _), s in models.SIZES.items() if t == tier),
               key=lambda s: abs(models.dimensions(s)[0] / models.dimensions(s)[1] - w / h))
    return models.dimensions(best)
