"""The one graph routine: dependency order, cycles, ancestors and descendants.

Used by the spec checker (cycles between shots), the planner (task order) and the run
scheduler (its ready queue is this graph's in-degrees, consumed as tasks finish). Pure
Python on purpose: networkx costs about 0.2 s to import, close to half of a 1,000-shot
no-op run, so it is loaded only to export a graph for analysis (`to_networkx`).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import networkx as nx

N = TypeVar("N", bound=Hashable)


class CycleError(ValueError):
    """The graph has a cycle; `cycle` lists its nodes in order (first == last)."""

    def __init__(self, cycle: Sequence[Hashable]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(map(str, cycle)))


class Graph(Generic[N]):
    """A DAG given as `node -> its dependencies`. Dependencies that are not nodes of the
    graph are ignored (a plan restricted with --only keeps edges to tasks outside it)."""

    def __init__(self, deps: Mapping[N, Iterable[N]]):
        self.deps: dict[N, tuple[N, ...]] = {
            n: tuple(d for d in ds if d in deps) for n, ds in deps.items()}
        self.dependents: dict[N, list[N]] = {n: [] for n in self.deps}
        for node, node_deps in self.deps.items():
            for dep in node_deps:
                self.dependents[dep].append(node)

    def __len__(self) -> int:
        return len(self.deps)

    def in_degrees(self) -> dict[N, int]:
        return {n: len(ds) for n, ds in self.deps.items()}

    def order(self) -> list[N]:
        """Every node after its dependencies; stable (ties keep the mapping's order).
        Raises CycleError naming a cycle when there is one."""
        waiting = self.in_degrees()
        ready = deque(n for n, count in waiting.items() if count == 0)
        ordered: list[N] = []
        while ready:
            node = ready.popleft()
            ordered.append(node)
            for nxt in self.dependents[node]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    ready.append(nxt)
        if len(ordered) != len(self.deps):
            raise CycleError(self.find_cycle() or [])
        return ordered

    def find_cycle(self) -> list[N] | None:
        """One cycle as a closed path of nodes, or None (iterative depth-first search)."""
        state: dict[N, int] = {}   # 1 = on the current path, 2 = finished
        for root in self.deps:
            if root in state:
                continue
            path: list[N] = [root]
            iters = [iter(self.deps[root])]
            state[root] = 1
            while iters:
                dep = next(iters[-1], None)
                if dep is None:
                    state[path.pop()] = 2
                    iters.pop()
                elif state.get(dep) == 1:
                    return path[path.index(dep):] + [dep]
                elif dep not in state:
                    state[dep] = 1
                    path.append(dep)
                    iters.append(iter(self.deps[dep]))
        return None

    def ancestors(self, roots: Iterable[N]) -> set[N]:
        """The roots and everything they depend on, directly or not."""
        return self._reach(roots, self.deps)

    def descendants(self, root: N) -> set[N]:
        """Everything that depends on `root`, directly or not (not `root` itself)."""
        return self._reach(self.dependents[root], self.dependents)

    @staticmethod
    def _reach(starts: Iterable[N], edges: Mapping[N, Iterable[N]]) -> set[N]:
        seen: set[N] = set()
        stack = list(starts)
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(edges[node])
        return seen

    def levels(self) -> list[list[N]]:
        """Nodes grouped so that each group depends only on earlier groups."""
        level: dict[N, int] = {}
        for node in self.order():
            level[node] = 1 + max((level[d] for d in self.deps[node]), default=-1)
        groups: list[list[N]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for node, n in level.items():
            groups[n].append(node)
        return groups

    def edges(self) -> list[tuple[N, N]]:
        """(dependency, dependent) pairs."""
        return [(d, n) for n, ds in self.deps.items() for d in ds]

    def to_networkx(self) -> nx.DiGraph:  # networkx is imported (to run) only here
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(self.deps)
        graph.add_edges_from(self.edges())
        return graph
