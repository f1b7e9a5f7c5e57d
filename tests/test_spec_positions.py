"""Positions: where each value and key of a document is, as `file:line:col` and JSON path."""
from __future__ import annotations

from wanflow.spec.positions import Positions, json_path


def test_json_path():
    assert json_path(("scenes", 0, "shots", 2, "duration")) == "$.scenes[0].shots[2].duration"
    assert json_path(("settings", "limits", "wan2.7-t2v")) == '$.settings.limits["wan2.7-t2v"]'
    assert json_path(()) == "$"


def test_positions_fall_back_to_the_nearest_recorded_ancestor():
    pos = Positions("s.yaml")
    pos.add((), 1, 1)
    pos.add(("scenes",), 3, 3, key=True)
    pos.add(("scenes",), 4, 5)
    pos.add(("scenes", 0), 4, 7)
    where = pos.at(("scenes", 0, "shots", 2))
    assert (str(where), where.path) == ("s.yaml:4:7", "$.scenes[0].shots[2]")
    assert str(pos.key(("scenes",))) == "s.yaml:3:3"
    assert str(pos.key(("scenes", 0))) == "s.yaml:4:7"      # no key: the value
    pos.add_missing(("scenes", 0), 9, 9)                     # recorded already: kept
    assert pos.line_col(("scenes", 0)) == (4, 7)
    assert pos.line_col(("films",)) is None and str(pos.at(("films",))) == "s.yaml:1:1"
