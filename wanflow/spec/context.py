"""What the semantic checks know besides the draft spec: where each part of it was written.

The builder fills it while it turns YAML values into spec values; the checks read it to
point each diagnostic at the line that caused it (which, for a shot's inherited field, is in
its template or under `defaults`, not at the shot).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .nodes import Diagnostic, Spec, Where


@dataclass
class Source:
    """Where one scene, film or shot of the draft spec was written, part by part."""

    where: Where
    # A field's value; a shot's effective value may sit in a template or in defaults.
    fields: dict[str, Where] = field(default_factory=dict)
    # Items of lists: ("input", i) is shot.inputs[i]; also ("voice", i), ("needs", i) and a
    # film's ("scenes", i).
    items: dict[tuple[str, int], Where] = field(default_factory=dict)
    inherited: dict[str, str] = field(default_factory=dict)  # field -> "template 'x'" | "defaults"
    rejected: set[str] = field(default_factory=set)          # fields the schema rejected
    skip_model_rules: bool = False  # its model is missing or invalid, and that is reported

    def at(self, name: str, index: int | None = None) -> Where:
        """Where a field (or item `index` of a list) is; the node itself if unknown."""
        if index is not None and (name, index) in self.items:
            return self.items[(name, index)]
        return self.fields.get(name, self.where)

    def via(self, name: str) -> str:
        """` (from template 'x')` for a value the shot inherited, else ''."""
        origin = self.inherited.get(name)
        return f" (from {origin})" if origin else ""


@dataclass
class Context:
    """What the checks need besides the draft spec: where each part of it was written."""

    spec: Spec
    file: str          # the top-level spec as displayed
    base_dir: str      # directory of the top-level spec
    top: Where         # the top-level mapping
    assets: dict[str, Where] = field(default_factory=dict)
    scenes: dict[str, Source] = field(default_factory=dict)
    films: dict[str, Source] = field(default_factory=dict)
    shots: dict[str, Source] = field(default_factory=dict)       # by qualified id
    bad_assets: set[str] = field(default_factory=set)  # declared but invalid: no "unknown" errors

    def _nowhere(self) -> Where:
        return Where(self.file or self.spec.file, 1, 1)

    def asset(self, name: str) -> Where:
        return self.assets.get(name) or self._nowhere()

    def scene(self, scene_id: str) -> Source:
        return self.scenes.get(scene_id) or Source(self._nowhere())

    def film(self, film_id: str) -> Source:
        return self.films.get(film_id) or Source(self._nowhere())

    def shot(self, qid: str) -> Source:
        return self.shots.get(qid) or Source(self._nowhere())


class Report:
    """The diagnostics the checks find, in the order found."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, where: Where, message: str) -> None:
        self.items.append(Diagnostic(where, message))

    def warning(self, where: Where, message: str) -> None:
        self.items.append(Diagnostic(where, message, "warning"))
