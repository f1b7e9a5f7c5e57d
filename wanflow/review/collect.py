"""What the review page shows, gathered from a `Session`: also what `report --json` prints.

Read from the plan's one assessment, the store's result records and the spec; nothing is
generated or paid for. Every take of every shot is listed (its output when the store holds
a current one, else why it would run), with the request it sends, the provider's answer,
cost and the command that picks it.
"""
from __future__ import annotations

import shlex

from ..plan import beats, request
from ..plan.assess import CACHED, TaskState
from ..plan.tasks import GenTask, TaskId
from ..spec.nodes import Input, Shot

KIND_OF_MIME = (("image/", "image"), ("audio/", "audio"), ("video/", "video"))


def collect(session) -> dict:
    """The page's data: totals, the film and scene renders, and every shot with its takes."""
    plan, states = session.plan, session.states
    spec = plan.spec
    scenes = []
    for scene in spec.scenes:
        shots = [_shot(session, shot) for shot in scene.shots]
        scenes.append({"id": scene.id, **_assembly(states.get(TaskId.scene(scene.id))),
                       "path": scene.path, "shots": shots})
    films = [{"id": f.id, "path": f.path, **_assembly(states.get(TaskId.film(f.id)))}
             for f in spec.films]
    takes = [t for s in scenes for shot in s["shots"] for t in shot["takes"]]
    current = [t for t in takes if t["status"] == CACHED]
    return {"spec": spec.name, "spec_file": session.spec_file,
            "backend": session.backend.identity, "paid": session.backend.paid,
            "backend_reason": session.choice.reason, "currency": session.pricing.currency,
            "price_basis": session.pricing.basis, "notes": list(plan.notes),
            "totals": {"takes": len(takes), "cached": len(current),
                       "to_generate": len(takes) - len(current),
                       "billed_seconds": round(sum(t["billed_seconds"] or 0 for t in current), 3),
                       "cost": round(sum(t["cost"] or 0 for t in current), 4),
                       "estimated_cost": round(sum(t["estimated_cost"] or 0 for t in takes
                                                   if t["status"] != CACHED), 4),
                       "unpriced": sum(1 for t in takes
                                       if t["status"] != CACHED and t["price"] is None)},
            "films": films, "scenes": scenes}


def _assembly(state: TaskState | None) -> dict:
    """A scene or film render: its stored output when current."""
    if state is None:
        return {"task": None, "output": None, "current": False, "duration": None,
                "reason": "not in this plan"}
    output = state.output if state.status == CACHED else None
    meta = state.record.meta if state.record is not None else {}
    return {"task": state.task, "output": output.digest if output is not None else None,
            "current": output is not None, "duration": meta.get("duration"),
            "width": meta.get("width"), "height": meta.get("height"),
            "reason": state.reason}


def _shot(session, shot: Shot) -> dict:
    plan, states = session.plan, session.states
    task = plan.tasks.get(TaskId.gen(shot.qid, 1))
    sent = shot.prompt
    for take in range(1, shot.takes + 1):
        state = states.get(TaskId.gen(shot.qid, take))
        if state is not None and state.prepared and state.prepared.request:
            sent = state.prepared.request.body.get("input", {}).get("prompt", sent)
            break
    preamble, found = beats.split(sent)
    return {"id": shot.qid, "name": shot.id, "model": shot.model,
            "width": task.width if isinstance(task, GenTask) else None,
            "height": task.height if isinstance(task, GenTask) else None,
            "fps": task.fps if isinstance(task, GenTask) else None,
            "duration": _clip_seconds(shot),
            "scene_start": task.cue.scene_start if isinstance(task, GenTask) and task.cue
            else None,
            "prompt": shot.prompt, "prompt_sent": sent, "negative_prompt": shot.negative_prompt,
            "preamble": preamble if found else "",
            "beats": [{"start": b.start, "end": b.end, "text": b.text} for b in found],
            "template": shot.template, "pick": shot.pick, "take_count": shot.takes,
            "inputs": [_input(session, shot, item) for item in shot.inputs]
            + ([_audio(session, shot.audio, "driving_audio")] if shot.audio else []),
            "takes": [_take(session, shot, take) for take in range(1, shot.takes + 1)]}


def _clip_seconds(shot: Shot) -> float | None:
    from .. import models

    info = models.lookup(shot.model)
    seconds = info.clip_seconds(shot.duration) if info else None
    return float(seconds) if seconds is not None else None


def _input(session, shot: Shot, item: Input) -> dict:
    """An input of a shot, where it comes from and (when known) the stored bytes."""
    source = request.source_of(item, session.plan.picks)
    state = session.states.get(source)
    output = state.output.digest if state is not None and state.output is not None else None
    duration = state.output.duration if output else None
    if item.ref is not None:
        label = (f"{item.ref.frame} frame of {item.ref.shot}" if item.ref.frame
                 else f"clip of {item.ref.shot}")
        kind = "image" if item.ref.frame else "video"
        return {"role": item.role, "source": source, "label": label, "kind": kind,
                "shot": item.ref.shot, "output": output, "file": None, "duration": duration}
    asset = session.plan.spec.assets[item.asset]
    return {"role": item.role, "source": source, "kind": _kind(source, session),
            "label": f"{asset.name} ({asset.path or asset.url})", "shot": None,
            "output": output, "file": asset.file, "url": asset.url,
            "voice": item.voice, "description": item.description}


def _audio(session, name: str, role: str) -> dict:
    asset = session.plan.spec.assets[name]
    source = TaskId.asset(name)
    state = session.states.get(source)
    return {"role": role, "source": source, "kind": "audio", "shot": None,
            "label": f"{name} ({asset.path or asset.url})", "file": asset.file,
            "url": asset.url,
            "output": state.output.digest if state is not None and state.output else None}


def _kind(source: TaskId, session) -> str:
    task = session.plan.tasks.get(source)
    mime = task.output_mime if task is not None else ""
    return next((kind for prefix, kind in KIND_OF_MIME if mime.startswith(prefix)), "file")


def _take(session, shot: Shot, take: int) -> dict:
    tid = TaskId.gen(shot.qid, take)
    state = session.states.get(tid)
    status = state.status if state is not None else "not planned"
    current = state is not None and state.status == CACHED and state.output is not None
    meta = state.record.meta if current and state.record is not None else {}
    prepared = state.prepared if state is not None else None
    body = prepared.request.body if prepared and prepared.request else None
    backend = meta.get("backend")
    return {"task": tid, "take": take, "picked": take == shot.pick, "status": status,
            "reason": state.reason if state is not None else "",
            "output": state.output.digest if current else None,
            "duration": meta.get("duration"), "width": meta.get("width"),
            "height": meta.get("height"), "backend": backend,
            "paid": bool(backend) and not str(backend).startswith("preview"),
            "remote_id": meta.get("task_id"), "request_id": meta.get("request_id"),
            "actual_prompt": meta.get("actual_prompt"),
            "prompt_sent": body.get("input", {}).get("prompt") if body else None,
            "seed": request.take_seed(shot, take),
            "billed_seconds": meta.get("billed_seconds"), "cost": meta.get("cost"),
            "currency": meta.get("currency"),
            "price": state.price if state is not None else None,
            "estimated_cost": state.list_cost if state is not None else None,
            "pick_command": pick_command(session.spec_file, shot.qid, take)}


def pick_command(spec_file: str, qid: str, take: int) -> str:
    """The exact command that makes `take` the one that goes into the cut."""
    return f"wanflow pick {qid} {take} {shlex.quote(spec_file)}"
