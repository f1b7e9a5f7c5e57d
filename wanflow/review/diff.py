"""`wanflow diff`: what a change to a spec does, compared request by request with a git ref.

The spec, the files it includes, the assets they name and the lock file are read at the
ref with `git show` into a temporary folder, loaded and planned like the working spec.
Each shot's takes are then compared by the requests they would send, not by their keys:
keys depend on the backend and on upstream outputs, so a preview lock and a paid lock of
one spec would differ everywhere. In a request, an input made by another shot (its last
frame, its clip) is compared by what it is (`frame:scene.shot#2:last`), and a shot whose
input comes from a changed shot is "upstream changed". Scenes and films are compared by
what they join and how. The cost of the change is what the changed takes cost on the paid
API at the plan's prices.
"""
from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import models
from ..errors import SpecError, UsageError
from ..plan import cost, keys, planner, request
from ..plan.assess import CACHED, assess
from ..plan.tasks import AssembleTask, GenTask, TaskId
from ..spec.nodes import Spec
from ..store import lockfile
from ..text import shown

SPEC_EXTS = (".yaml", ".yml")
BRANCHES = ("origin/HEAD", "main", "master")   # the default branch, in order of trust


@dataclass(frozen=True)
class Base:
    ref: str       # as named (or the default branch found)
    commit: str    # the commit compared with
    how: str       # how it was chosen, said to the user


@dataclass(frozen=True)
class _Symbol(request.Blob):
    """An input made by another task: compared by what it is, since its bytes may be
    known on one side only."""

    @property
    def ref(self) -> str:
        return f"output of {self.digest}"


# -- git -------------------------------------------------------------------------------

def _git(root: str, *args: str, binary: bool = False):
    try:
        proc = subprocess.run(["git", "-C", root, *args], capture_output=True, check=False,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UsageError(f"diff needs git: {err}") from None
    if proc.returncode != 0:
        return None
    return proc.stdout if binary else proc.stdout.decode("utf-8", "replace").strip()


def repo_root(spec_file: str) -> str:
    root = _git(os.path.dirname(os.path.abspath(spec_file)), "rev-parse", "--show-toplevel")
    if not root:
        raise UsageError(f"{shown(spec_file)} is not in a git repository: diff compares the "
                         "spec with a git ref")
    return root


def resolve_base(root: str, ref: str | None) -> Base:
    """The commit to compare with: `ref` as given, else the merge base of HEAD and the
    default branch (origin/HEAD, else main, else master)."""
    if ref:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if not commit:
            raise UsageError(f"--base {shown(ref)}: no such commit in {root}")
        return Base(ref, commit, f"{ref} as given")
    for branch in BRANCHES:
        if _git(root, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}"):
            commit = _git(root, "merge-base", "HEAD", branch)
            if commit:
                return Base(branch, commit, f"the merge base of HEAD and {branch}, "
                                            f"{commit[:10]}")
    raise UsageError("no default branch to compare with (tried origin/HEAD, main and "
                     "master); pass --base REF")


def _checkout(root: str, commit: str, rel_spec: str, dest: str) -> bool:
    """Write the spec at `commit`, the files it includes and the assets they name under
    `dest` (as laid out in the repository); False when the spec did not exist then."""
    from ..spec import yaml as spec_yaml  # the YAML reader, only when there is a diff

    wanted, seen = [rel_spec], set()
    while wanted:
        rel = wanted.pop()
        if rel in seen or rel.startswith("../"):
            continue
        seen.add(rel)
        data = _git(root, "show", f"{commit}:{rel}", binary=True)
        if data is None:
            if rel == rel_spec:
                return False
            continue   # gone at that commit: loading says so
        path = os.path.join(dest, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        if not rel.endswith(SPEC_EXTS):
            continue
        try:
            doc = spec_yaml.read(path, rel)
        except spec_yaml.Unreadable:
            continue   # loading reports it
        here = posixpath.dirname(rel)
        named = list(doc.data.get("include") or []) if isinstance(
            doc.data.get("include"), list) else []
        assets = doc.data.get("assets")
        for value in (assets.values() if isinstance(assets, dict) else ()):
            named.append(value.get("path") if isinstance(value, dict) else value)
        for item in named:
            if isinstance(item, str) and "://" not in item and "${" not in item:
                wanted.append(posixpath.normpath(posixpath.join(here, item)))
    parts = rel_spec.split("/")[:-1]
    for depth in range(len(parts) + 1):   # project-root markers between the repo and the spec
        marker = "/".join([*parts[:depth], ".wanflow-root"])
        if _git(root, "cat-file", "-e", f"{commit}:{marker}") is not None:
            open(os.path.join(dest, *marker.split("/")), "w").close()
    os.makedirs(os.path.join(dest, ".git"), exist_ok=True)
    return True


# -- comparing -------------------------------------------------------------------------

def _asset_ids(spec: Spec) -> dict[str, str]:
    from ..run.project import hash_assets

    ids = hash_assets(spec)
    ids.update({name: f"url:{a.url}" for name, a in spec.assets.items() if a.url})
    return ids


def _blobs(task: GenTask, ids: Mapping[str, str]) -> dict[TaskId, request.Blob]:
    blobs: dict[TaskId, request.Blob] = {}
    for source in task.inputs:
        if source.kind == "asset":   # media types are not part of a request body
            blobs[source] = request.Blob(ids.get(source.name, source.name), "")
        else:
            blobs[source] = _Symbol(str(source), "image/png" if source.kind == "frame"
                                    else "video/mp4")
    return blobs


def requests(plan: planner.Plan, ids: Mapping[str, str]) -> dict[TaskId, dict]:
    """Each generation's request body, inputs named by content (assets) or by the task
    that makes them (other shots' frames and clips)."""
    return {t.id: request.build(t.shot, t.take, _blobs(t, ids), plan.picks).body
            for t in plan.gen_tasks()}


def _assembly(task: AssembleTask, ids: Mapping[str, str]) -> dict:
    bed = None
    if task.bed is not None:
        bed = {"audio": ids.get(task.bed.asset, task.bed.asset), "volume": task.bed.volume,
               "duck": task.bed.duck, "loop": task.bed.loop, "fade": task.bed.fade}
    return {"clips": [str(c) for c in task.clips],
            "transition": {"type": task.transition.type, "seconds": task.transition.seconds},
            "bed": bed,
            "size": f"{task.width}x{task.height}", "fps": task.fps}


class _Side:
    """One side of the comparison: a plan, its requests and (where stored) its outputs."""

    def __init__(self, session, spec: Spec, lock: Mapping) -> None:
        self.spec = spec
        self.plan = planner.build(spec, session.backend.identity)
        self.ids = _asset_ids(spec)
        self.bodies = requests(self.plan, self.ids)
        digests = {k: v for k, v in self.ids.items() if not v.startswith("url:")}
        self.states = assess(self.plan, session.store, lock, {}, digests,
                             paid=session.backend.paid, pricing=session.pricing)
        self.shots = {s.qid: s for s in spec.shots()}

    def picked_output(self, qid: str) -> str | None:
        shot = self.shots.get(qid)
        return self.output(TaskId.gen(qid, shot.pick)) if shot else None

    def output(self, tid: TaskId) -> str | None:
        state = self.states.get(tid)
        return state.output.digest if state and state.status == CACHED and state.output \
            else None


def _input_shots(shot) -> set[str]:
    return {item.ref.shot for item in shot.inputs if item.ref is not None}


def compare(session, old_spec: Spec | None, old_lock: Mapping, base: Base) -> dict:
    """The diff of the session's spec against `old_spec` (None: the spec is new)."""
    new = _Side(session, session.plan.spec, session.lock)
    old = _Side(session, old_spec, old_lock) if old_spec is not None else None
    old_shots = old.shots if old else {}
    pricing = session.pricing
    # A planned spec names only known models, so lookup() finds each one.
    clip_seconds = {t.shot.qid: float(models.lookup(t.shot.model).longest_clip(  # type: ignore[union-attr]
        t.shot.duration)) for t in new.plan.gen_tasks()}
    changes: dict[str, dict] = {}
    for qid, shot in new.shots.items():
        if qid not in old_shots:
            changes[qid] = {"change": "added", "how": "new shot",
                            "takes": list(range(1, shot.takes + 1))}
            continue
        assert old is not None   # the shot was there before
        before = old_shots[qid]
        fields: list[str] = []
        takes = []
        for take in range(1, max(shot.takes, before.takes) + 1):
            tid = TaskId.gen(qid, take)
            a, b = old.bodies.get(tid), new.bodies.get(tid)
            if a is None or b is None:
                fields.append(f"take {take} {'added' if a is None else 'removed'}")
                if b is not None:
                    takes.append(take)
            elif a != b:
                takes.append(take)
                fields += [f for f in keys.diff(a, b) if f not in fields]
        if shot.pick != before.pick:
            fields.append(f"pick {before.pick} -> {shot.pick}")
        if fields:
            changes[qid] = {"change": "changed", "how": "changed: " + ", ".join(fields),
                            "fields": fields, "takes": takes}
    # A shot made from a changed shot's frame or clip changes with it, whatever its request.
    grew = True
    while grew:
        grew = False
        for qid, shot in new.shots.items():
            if qid in changes:
                continue
            upstream = sorted(_input_shots(shot) & set(changes))
            if upstream:
                changes[qid] = {"change": "upstream changed",
                                "how": "upstream changed: " + ", ".join(upstream),
                                "takes": list(range(1, shot.takes + 1))}
                grew = True
    shots = []
    total, billed, unpriced = 0.0, 0.0, 0
    for qid, item in changes.items():
        shot = new.shots[qid]
        price_sum, seconds = 0.0, 0.0
        known = True
        for take in item["takes"]:
            task = new.plan.tasks[TaskId.gen(qid, take)]
            assert isinstance(task, GenTask)
            secs = cost.billed_seconds(task, {}, new.plan.picks, clip_seconds)
            price = pricing.per_second(shot.model, *cost.tier_of(task))
            seconds += secs
            if price is None:
                known = False
                unpriced += 1
            else:
                price_sum += secs * price
        total += price_sum
        billed += seconds
        shots.append({"id": qid, "anchor": f"shot-{qid}", **item,
                      "billed_seconds": round(seconds, 3),
                      "cost": round(price_sum, 4) if known else None,
                      "before": old.picked_output(qid) if old else None,
                      "after": new.picked_output(qid)})
    for qid in old_shots:
        if qid not in new.shots:
            assert old is not None   # it had the shot
            shots.append({"id": qid, "anchor": "h-diff", "change": "removed",
                          "how": "removed from the spec", "takes": [],
                          "billed_seconds": 0.0, "cost": 0.0,
                          "before": old.picked_output(qid), "after": None})
    return {"spec": session.plan.spec.name, "spec_file": session.spec_file,
            "base": {"ref": base.ref, "commit": base.commit, "how": base.how},
            "new_spec": old is None, "backend": session.backend.identity,
            "shots": shots, "assemblies": _assemblies(old, new, changes),
            "cost": {"generations": sum(len(s["takes"]) for s in shots),
                     "billed_seconds": round(billed, 3), "amount": round(total, 4),
                     "currency": pricing.currency, "unpriced": unpriced,
                     "basis": pricing.basis}}


def _assemblies(old: _Side | None, new: _Side,
                changes: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    old_tasks = old.plan.tasks if old else {}
    for tid, task in new.plan.tasks.items():
        if not isinstance(task, AssembleTask):
            continue
        anchor = f"{task.kind}-{task.id.name}"
        if tid not in old_tasks:
            out.append({"id": str(tid), "anchor": anchor, "change": "added",
                        "how": f"new {task.kind}", "before": None,
                        "after": new.output(tid)})
            continue
        before = old_tasks[tid]
        assert isinstance(before, AssembleTask) and old is not None
        fields = keys.diff(_assembly(before, old.ids), _assembly(task, new.ids))
        # Scenes come before the films that join them (the plan is in dependency order).
        changed = set(changes) | {item["id"] for item in out}
        moved = sorted({c.name for c in task.clips
                        if (c.name if c.kind == "gen" else str(c)) in changed})
        if not fields and not moved:
            continue
        how = []
        if fields:
            how.append("changed: " + ", ".join(fields))
        if moved:
            how.append("reassembled: " + ", ".join(moved) + " changed")
        out.append({"id": str(tid), "anchor": anchor,
                    "change": "changed" if fields else "upstream changed",
                    "how": "; ".join(how), "fields": fields,
                    "before": old.output(tid), "after": new.output(tid)})
    new_ids = set(new.plan.tasks)
    for tid, task in old_tasks.items():
        if isinstance(task, AssembleTask) and tid not in new_ids:
            assert old is not None   # it had the task
            out.append({"id": str(tid), "anchor": "h-diff", "change": "removed",
                        "how": f"{task.kind} removed", "before": old.output(tid),
                        "after": None})
    return out


def diff(session, ref: str | None = None) -> dict:
    """Compare the session's spec and lock file with those at `ref` (default: the merge
    base with the default branch)."""
    spec_file = session.plan.spec.file
    root = repo_root(spec_file)
    base = resolve_base(root, ref)
    real_root = os.path.realpath(root)
    rel_spec = os.path.relpath(os.path.realpath(spec_file), real_root).replace(os.sep, "/")
    rel_lock = os.path.relpath(os.path.realpath(session.lock_path),
                               real_root).replace(os.sep, "/")
    text = _git(root, "show", f"{base.commit}:{rel_lock}")
    old_lock = lockfile.parse(text, f"{base.ref}:{rel_lock}") if text else {}
    with tempfile.TemporaryDirectory(prefix="wanflow-diff-") as tmp:
        old_spec = None
        if _checkout(root, base.commit, rel_spec, tmp):
            from ..spec import load

            try:
                old_spec = load(os.path.join(tmp, *rel_spec.split("/")))
            except SpecError as err:
                first = err.diagnostics[0] if err.diagnostics else "invalid"
                raise UsageError(f"the spec at {base.ref} ({base.commit[:10]}) does not load, "
                                 f"so there is nothing to compare with: {first}") from None
        return compare(session, old_spec, old_lock, base)


def diff_text(data: dict) -> str:
    """The diff for a terminal."""
    base = data["base"]
    lines = [f"{data['spec']}: compared with {base['ref']} ({base['how']})"]
    if data["new_spec"]:
        lines.append("the spec is new at this ref")
    for item in data["shots"] + data["assemblies"]:
        lines.append(f"  {item['change']:<16} {item['id']}  {item['how']}")
    if len(lines) == 1:
        lines.append("  no shot, scene or film changed")
    c = data["cost"]
    unknown = f", {c['unpriced']} with no known price" if c["unpriced"] else ""
    lines.append(f"cost of the change: {c['amount']:.2f} {c['currency']} for "
                 f"{c['generations']} generation(s), {c['billed_seconds']:.1f} billed s"
                 f"{unknown} ({c['basis']})")
    return "\n".join(lines)
