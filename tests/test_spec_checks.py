"""The pure helpers of the semantic checks (the rules themselves are exercised through the
corpus of invalid specs in test_spec_validate.py)."""
from __future__ import annotations

from wanflow.spec import checks
from wanflow.spec.nodes import Where


def test_check_helpers():
    assert checks.media_kind("a/b.PNG") == "image"
    assert checks.media_kind("https://e.com/v.mp4?sig=1") == "video"
    assert checks.media_kind("x.txt") is None
    dups = checks.unique("film id", [("a", Where("f", 1, 1)), ("a", Where("f", 4, 3))])
    assert len(dups) == 1 and dups[0].where.line == 4 and "first defined at f:1:1" in dups[0].message
