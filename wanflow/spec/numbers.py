"""Numbers in a spec mean what they say.

YAML reads `2.0` as a float, and JSON Schema counts a float with no fraction as an integer,
so `duration: 2.0` passes the schema; left a float, it would then be dropped by every
`isinstance(value, int)` downstream and the request would carry the default instead. So,
before the schema, a whole-valued float becomes the integer it spells, wherever it is
(`duration`, `seed`, `takes`, `pick`, limits, variables and template values alike): the
request, its key, the plan and the lock file all see `2`. A fraction where an integer belongs
is the schema's error, with its position.

NaN and the infinities (`.nan`, `.inf`, `-.inf`, or a variable holding one) compare false
with every bound, so the schema would let most of them through: each is refused here, at its
position, and the schema masks it without a second message, so that nothing downstream
falls back to a default.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .nodes import Diagnostic
from .positions import KeyPath, label

if TYPE_CHECKING:
    from .yaml import Document

_EXACT = 2 ** 53   # beyond this a float no longer stands for one integer: leave it to the schema


def normalise(doc: Document) -> tuple[list[Diagnostic], set[KeyPath]]:
    """Turn whole-valued floats of `doc.data` into ints; report NaN and infinities.

    Returns the diagnostics and the paths of the refused values (for the schema to mask)."""
    out: list[Diagnostic] = []
    refused: set[KeyPath] = set()
    doc.data = _walk(doc, (), doc.data, out, refused)
    return out, refused


def _walk(doc: Document, path: KeyPath, value: Any, out: list[Diagnostic],
          refused: set[KeyPath]) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            spelled = ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
            out.append(Diagnostic(doc.pos.at(path), f"{label(path)}: {spelled} is not allowed; "
                                  "write a finite number"))
            refused.add(path)
        elif value.is_integer() and abs(value) <= _EXACT:
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: _walk(doc, path + (k,), v, out, refused) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(doc, path + (i,), v, out, refused) for i, v in enumerate(value)]
    return value
