"""The run stage: each task is made concrete once, the public API works, the tree is sound."""
from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

import pytest

import wanflow
from wanflow.plan import request
from wanflow.run.events import Event
from wanflow.settings import Settings

SPEC = """\
wanflow: 1
name: once
defaults: {model: wan2.7-t2v, resolution: 720P, ratio: "16:9", duration: 2, prompt_extend: false}
scenes:
  - id: s
    shots:
      - {id: a, prompt: "The lighthouse at dawn."}
      - {id: b, model: wan2.7-i2v, prompt: "The beam sweeps.", first_frame: {shot: a, frame: last},
         takes: 2}
      - {id: c, prompt: "Gulls over the pier."}
films:
  - {id: main, path: renders/main.mp4, scenes: [s]}
"""


def test_each_request_is_built_once_per_run(project, monkeypatch):
    spec = project / "wanflow.yaml"
    spec.write_text(SPEC)
    built = Counter()
    real = request.build

    def counting(shot, take, *args, **kwargs):
        built[(shot.qid, take)] += 1
        return real(shot, take, *args, **kwargs)

    monkeypatch.setattr(request, "build", counting)
    events = []
    with wanflow.open(str(spec), Settings(backend="preview")) as flow:
        summary = flow.run(reporter=lambda event, **data: events.append((event, data)))
    assert summary.ok and summary.generated == 4
    # a and c are known before the run (assessment); b's takes once a's frame exists.
    assert built == Counter({("s.a", 1): 1, ("s.c", 1): 1, ("s.b", 1): 1, ("s.b", 2): 1})
    assert any(e is Event.DONE for e, _ in events)
    built.clear()
    with wanflow.open(str(spec), Settings(backend="preview")) as flow:
        summary = flow.run()                                      # nothing to do
    assert summary.generated == 0 and all(n == 1 for n in built.values())


def test_public_api_plans_runs_and_reads_the_lock(project):
    spec = project / "wanflow.yaml"
    spec.write_text(SPEC)
    loaded = wanflow.load(str(spec))
    assert loaded.name == "once" and len(list(loaded.shots())) == 3
    with wanflow.open(str(spec)) as flow:
        plan = flow.plan()
        assert plan["backend"].startswith("preview") and plan["totals"]["to_run"] > 0
        json.dumps(plan)   # a plain JSON document
        assert flow.run().ok
    lock = wanflow.read_lock(str(project / "wanflow.preview.lock"))
    assert "film:main" in lock and lock["gen:s.a#1"].backend.startswith("preview")
    with wanflow.open(str(spec)) as flow:
        assert flow.plan()["totals"]["to_run"] == 0
        assert flow.status()["totals"]["cached"] == len(flow.session.plan.tasks)
    assert set(wanflow.__all__) >= {"load", "open", "read_lock", "Settings", "Pipeline"}


# ---- the tree ------------------------------------------------------------------------------

PACKAGE = Path(wanflow.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level_imports(path: Path) -> set[str]:
    """wanflow modules imported at module level (lazy imports inside functions excluded)."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("wanflow"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("wanflow"))
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue
    return found


def test_no_import_cycles():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {i for i in _top_level_imports(p) if i in modules and i != m}
             for m, p in modules.items()}
    # A package's __init__ importing its own submodules is how re-exports work: not a cycle.
    for m in graph:
        graph[m] = {i for i in graph[m] if not i.startswith(m + ".")}
    seen: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m, [m])


def test_no_module_is_a_monolith():
    sizes = {_module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n > 650} == {}
