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
from ..plan import beats
from ..plan.request import GenRequest
from .base import BaseBackend, Finished, Submitted

_ids = itertools.count(1)


class PreviewBackend(BaseBackend):
    name = "preview"
    # The look of the animatic is part of every preview key: a new look redraws them all.
    # 2: input images, prompt beats, scene and film timecode.
    look = "preview/2"
    paid = False
    quotas = False   # rendered on this machine: no provider's quota to keep

    def __init__(self, *, delay: float = 0.0, scale: float = 1.0):
        self.delay = float(delay)   # extra seconds per task, to imitate slow generations
        self.scale = float(scale)   # fraction of the model's frame size to render at
        self.identity = self.look if self.scale == 1 else f"{self.look}@{self.scale:g}"
        self._jobs: dict[str, tuple[GenRequest, dict[str, str]]] = {}

    async def submit(self, request: GenRequest, files: dict[str, str], *,
                     before_send=None) -> Submitted:
        if before_send is not None:
            await before_send()
        remote_id = f"preview-{os.getpid()}-{next(_ids)}"
        self._jobs[remote_id] = (request, dict(files))
        return Submitted(remote_id=remote_id)

    async def wait(self, remote_id: str, request: GenRequest, *, elapsed: float = 0.0,
                   urgent=None, on_status=None) -> Finished:
        # A journaled id from an earlier process has no job here: render it again, it is free.
        self._jobs.setdefault(remote_id, (request, {}))
        if on_status is not None:
            on_status("RUNNING")
        if self.delay:
            await asyncio.sleep(self.delay)
        return Finished(remote_id=remote_id, request_id=None, video_url=None,
                        actual_prompt=None, usage={"duration": request.duration},
                        billed_seconds=request.duration)

    async def download(self, finished: Finished, dest: str) -> str:
        req, files = self._jobs.pop(finished.remote_id)
        return await asyncio.to_thread(_render, req, files, dest, self.scale)

    async def cancel(self, remote_id: str) -> bool:
        return self._jobs.pop(remote_id, None) is not None


def scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    """`width`×`height` times `scale`, each rounded to an even number (4:2:0 video needs
    even sides). Preview clips and the scenes assembled from them use this one rule, so
    that assembly never has to resize a clip."""
    if scale == 1:
        return width, height
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def _render(req: GenRequest, files: dict[str, str], dest: str, scale: float) -> str:
    """Render the animatic of `req` into `dest`; returns its sha256."""
    from .. import media  # PyAV loads only when something is rendered

    width, height = req.width, req.height
    audio = None
    for blob in req.blobs:
        path = files.get(blob.digest)
        if path and blob.mime.startswith("audio/") and audio is None:
            audio = path
    mimes = {blob.digest: blob.mime for blob in req.blobs}
    images = [(role, files[digest]) for role, digest in req.roles
              if digest in files and mimes.get(digest, "").startswith("image/")]
    first = next((path for role, path in images if role == "first_frame"), None)
    last = next((path for role, path in images if role == "last_frame"), None)
    references = tuple(path for role, path in images if role == "reference_image")
    lead = first or (references[0] if references else None)
    clip = next((files[b.digest] for b in req.blobs
                 if b.digest in files and b.mime.startswith("video/")), None)
    if req.aspect_from_input and (lead or clip):   # the first frame, or the clip an edit restyles
        if lead:
            size = media.image_size(lead)
        else:
            probe = media.probe(clip)
            size = (probe.width, probe.height)
        width, height = _follow_aspect(req.resolution, size)
    width, height = scaled(width, height, scale)
    scene, _, rest = req.label.partition(".")
    shot, _, take = rest.partition("#")
    prompt = req.body.get("input", {}).get("prompt", "")
    preamble, prompt_beats = beats.split(prompt)
    card = media.PreviewCard(
        scene=scene, shot=shot, take=int(take or 1),
        prompt=prompt if not prompt_beats else preamble, duration=req.duration,
        width=width, height=height, fps=req.fps, model=req.model,
        beats=tuple((b.start, b.end, b.text) for b in prompt_beats),
        scene_start=req.cue.scene_start if req.cue else None,
        film_start=req.cue.film_start if req.cue else None,
        first_image=first, last_image=last, references=references)
    media.render_preview(card, dest, audio=audio)
    digest = hashlib.sha256()
    with open(dest, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _follow_aspect(tier: str, size: tuple[int, int]) -> tuple[int, int]:
    """The standard size of `tier` whose aspect is closest to the input image's."""
    w, h = size
    best = min((s for (t, _), s in models.SIZES.items() if t == tier),
               key=lambda s: abs(models.dimensions(s)[0] / models.dimensions(s)[1] - w / h))
    return models.dimensions(best)
