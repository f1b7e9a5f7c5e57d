"""`wanflow report`: a review page of a spec's current renders.

One HTML file with, per scene and shot, a thumbnail of every take (the pick marked), the
prompt sent and the prompt the provider actually used, model, duration, billed seconds,
cost and whether the output is current. Made from the store and lock file; spends nothing.
"""
from __future__ import annotations

import html
import os

from .plan.assess import CACHED
from .plan.tasks import TaskId


def collect(session) -> dict:
    """The report's data (also what `report --json` prints)."""
    store, plan, states = session.store, session.plan, session.states
    scenes = []
    for scene in plan.spec.scenes:
        shots = []
        for shot in scene.shots:
            takes = []
            for take in range(1, shot.takes + 1):
                tid = TaskId.gen(shot.qid, take)
                state = states.get(tid)
                if state is None:
                    continue
                result = store.get_result(state.key) if state.key else None
                meta = result.meta if result else {}
                takes.append({
                    "task": tid, "take": take, "picked": take == shot.pick,
                    "status": state.status, "reason": state.reason,
                    "output": result.digest if result else None,
                    "duration": meta.get("duration"), "width": meta.get("width"),
                    "height": meta.get("height"), "backend": meta.get("backend"),
                    "remote_id": meta.get("task_id"), "actual_prompt": meta.get("actual_prompt"),
                    "billed_seconds": meta.get("billed_seconds"), "cost": meta.get("cost")})
            shots.append({"id": shot.qid, "model": shot.model, "prompt": shot.prompt,
                          "takes": takes})
        scenes.append({"id": scene.id, "shots": shots})
    films = [{"id": f.id, "path": f.path,
              "current": TaskId.film(f.id) in states
              and states[TaskId.film(f.id)].status == CACHED} for f in plan.spec.films]
    return {"spec": plan.spec.name, "backend": session.backend.identity, "scenes": scenes,
            "films": films}


def write(session, data: dict, out_dir: str) -> str:
    """Write `out_dir/index.html` and its thumbnails; returns the page's path."""
    from . import media

    os.makedirs(out_dir, exist_ok=True)
    e = html.escape
    parts = [f"<!doctype html><meta charset=utf-8><title>{e(data['spec'])} — wanflow</title>",
             "<style>body{font:14px system-ui;margin:2em;background:#111;color:#ddd}"
             "figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top;width:320px}"
             "img{width:320px;border:2px solid #333}.pick img{border-color:#f5a623}"
             "figcaption{font-size:12px;color:#aaa}.stale{color:#e66}h2{margin-top:2em}"
             "</style>",
             f"<h1>{e(data['spec'])}</h1><p>backend {e(data['backend'])}</p>"]
    for film in data["films"]:
        mark = "" if film["current"] else " <span class=stale>(not current)</span>"
        parts.append(f"<p>film <b>{e(film['id'])}</b>: {e(film['path'])}{mark}</p>")
    for scene in data["scenes"]:
        parts.append(f"<h2>scene {e(scene['id'])}</h2>")
        for shot in scene["shots"]:
            parts.append(f"<h3>{e(shot['id'])} <small>{e(shot['model'])}</small></h3>"
                         f"<p>{e(shot['prompt'])}</p>")
            for take in shot["takes"]:
                img = ""
                if take["output"] and session.store.has(take["output"]):
                    name = f"{take['output'][:16]}.png"
                    thumb = os.path.join(out_dir, name)
                    if not os.path.exists(thumb):
                        media.thumbnail(str(session.store.objects.path(take["output"])), thumb,
                                        at="first")
                    img = f"<img src='{e(name)}' alt='{e(take['task'])}'>"
                status = ("current" if take["status"] == CACHED
                          else f"<span class=stale>{e(take['reason'])}</span>")
                extra = ""
                if take["actual_prompt"]:
                    extra = f"<br>provider's prompt: {e(take['actual_prompt'])}"
                billed = take["billed_seconds"] or 0
                parts.append(
                    f"<figure class={'pick' if take['picked'] else 'take'}>{img}<figcaption>"
                    f"take {take['take']}{' (picked)' if take['picked'] else ''} · {status}"
                    f"<br>{take['duration'] or '-'} s · billed {billed} s · cost "
                    f"{take['cost'] or 0:.2f}{extra}</figcaption></figure>")
    page = os.path.join(out_dir, "index.html")
    tmp = page + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    os.replace(tmp, page)
    return page
