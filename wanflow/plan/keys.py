"""Content keys: sha256 of canonical JSON of exactly what a task would do.

Canonical JSON sorts keys, drops insignificant whitespace and keeps non-ASCII text as
UTF-8, so reordering YAML keys, reformatting or renaming files never changes a key.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

# Bump when the key material of any task kind changes meaning; old cache entries then miss.
KEY_SCHEME = 1


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def key_of(material: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical({"scheme": KEY_SCHEME, **material})).hexdigest()


def diff(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted paths where two key materials differ (`request.input.prompt`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            path = f"{prefix}.{k}" if prefix else str(k)
            if k not in old or k not in new:
                out.append(path)
            else:
                out.extend(diff(old[k], new[k], path))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(diff(a, b, f"{prefix}[{i}]"))
        return out
    return [] if old == new else [prefix or "(all)"]
