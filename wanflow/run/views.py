"""Text views of a session for people: the plan table, the status listing, the task graph."""
from __future__ import annotations

from .. import models
from ..plan.assess import CACHED, REMOTE, TaskState
from ..plan.planner import Plan
from ..plan.tasks import GenTask, TaskId
from . import budget
from .session import Session


def plan_table(session: Session, *, explain: bool = False) -> str:
    states = session.target_states
    paid = session.backend.paid
    pricing = session.pricing
    rows = []
    width = max((len(t) for t in states), default=4)
    for s in states.values():
        if s.status == CACHED and not explain:
            continue
        if s.status == REMOTE:
            cost = "       -"   # downloaded, not generated
        elif not s.priced:
            cost = "price unknown"
        elif paid and s.cost:
            cost = f"{s.cost:8.2f}"
        else:
            cost = "       -"
        secs = f"{s.billed_seconds:6.1f}" if s.status not in (CACHED, REMOTE) \
            and s.billed_seconds else "     -"
        if s.up_to and s.status not in (CACHED, REMOTE):
            secs = f"≤{s.billed_seconds:5.1f}"
        line = f"{s.task:<{width}}  {s.status:<9}  {secs}  {cost:>8}  {s.reason}"
        if s.up_to and s.status != CACHED:
            line += _up_to(session.plan, s.task)
        if explain and s.key:
            line += f"\n{'':<{width}}  key {s.key}"
        rows.append(line)
    t = budget.totals(states)
    head = f"{'task':<{width}}  {'status':<9}  {'bill s':>6}  {'cost':>8}  reason"
    unknown = f", {t['unpriced']} with no known price" if t["unpriced"] else ""
    billed = f"{'up to ' if t['up_to'] else ''}{t['billed_seconds']:.1f} billed s"
    if paid:
        money = (f"{billed}, estimated "
                 f"{budget.cost_words(t['cost'], t['unpriced'], currency=' ' + pricing.currency)}"
                 f" ({pricing.basis})")
    else:
        money = (f"preview: free (on DashScope in {pricing.region}: {billed}, "
                 f"about {t['list_cost']:.2f} {pricing.currency}{unknown})")
    remote = f"{t['remote']} on the remote, " if t["remote"] else ""
    foot = (f"{t['tasks']} tasks: {t['cached']} cached, {remote}{t['to_run']} to run, "
            f"{t['in_flight']} in flight; {money}")
    notes = [f"note: {note}" for note in session.plan.notes]
    notes += _unpriced_notes(session, states)
    return "\n".join([head, *rows, foot, *notes] if rows else [foot, *notes])


def _up_to(plan: Plan, task: TaskId) -> str:
    """Why a row's billed seconds are a ceiling."""
    gen = plan.tasks[task]
    assert isinstance(gen, GenTask)
    info = models.lookup(gen.shot.model)
    if info is not None and gen.shot.duration == models.AUTO:
        return f" (up to {info.longest_clip(models.AUTO)} s: the model chooses the length)"
    return " (at most: it uses a clip whose length a model chooses)"


def _unpriced_notes(session: Session, states: dict[TaskId, TaskState]) -> list[str]:
    """For each model to run with no known price: what third parties quote, labelled."""
    pricing = session.pricing
    notes = []
    unpriced: dict[str, None] = {}   # models in first-seen order
    for s in states.values():
        task = session.plan.tasks[s.task]
        if s.status != CACHED and not s.priced and isinstance(task, GenTask):
            unpriced[task.shot.model] = None
    for model in unpriced:
        quoted = pricing.third_party(model)
        if quoted is None:
            continue
        source, prices = quoted
        listed = ", ".join(f"{tier} {price:g}" for tier, price in prices.items())
        notes.append(f"{model}: no official price; indicative only, from {source}: {listed} "
                     f"{pricing.currency}/s. Put your own under [prices.{pricing.region}."
                     f"\"{model}\"] in the user config file (or --prices) to estimate and "
                     "budget with it")
    return notes


def status_text(report: dict) -> str:
    t = report["totals"]
    remote = f", {t['remote']} on the remote" if t["remote"] else ""
    head = (f"{report['spec']} ({report['backend']}): {t['cached']}/{t['tasks']} tasks up to "
            f"date{remote}, {t['to_run']} stale, {t['in_flight']} in flight")
    lines = [head]
    for item in report.get("remote", [])[:50]:
        lines.append(f"  remote     {item['task']}  (wanflow pull or run downloads it)")
    for item in report["stale"][:50]:
        lines.append(f"  stale      {item['task']}  ({item['reason']})")
    if len(report["stale"]) > 50:
        lines.append(f"  ... and {len(report['stale']) - 50} more")
    for item in report["in_flight"]:
        lines.append(f"  in flight  {item['task']}  {item['remote_id']} ({item['state']})")
    for item in report["outputs"]:
        mark = "ok" if item["up_to_date"] else ("stale" if item["exists"] else "missing")
        made = f"  (made by {item['made_by']})" if item.get("made_by") else ""
        lines.append(f"  {mark:<9}  {item['path']}{made}")
    return "\n".join(lines)


def graph_text(plan: Plan, fmt: str) -> str:
    """The task DAG as Graphviz dot or Mermaid."""
    ids = {tid: f"t{i}" for i, tid in enumerate(plan.tasks)}
    edges = plan.dag.edges()
    if fmt == "dot":
        lines = ["digraph wanflow {", "  rankdir=LR;"]
        for tid, task in plan.tasks.items():
            shape = {"gen": "box", "asset": "note", "frame": "ellipse"}.get(task.kind, "box3d")
            lines.append(f'  {ids[tid]} [label="{tid}", shape={shape}];')
        lines += [f"  {ids[a]} -> {ids[b]};" for a, b in edges]
        lines.append("}")
        return "\n".join(lines)
    lines = ["flowchart LR"]
    for tid, task in plan.tasks.items():
        open_, close = {"gen": ("[", "]"), "asset": ("[/", "/]"), "frame": ("(", ")")}.get(
            task.kind, ("[[", "]]"))
        lines.append(f'  {ids[tid]}{open_}"{tid}"{close}')
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in edges]
    return "\n".join(lines)
