"""The wording of diagnostics: "did you mean", lists of allowed values, values and numbers."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

_LONGEST_LISTING = 24   # allowed values shown before "… (N more)"
_LONGEST_SHOWN = 40     # characters of a string value quoted in a message


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """`; did you mean 'x'?` when `word` is close to one of `candidates`, else ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def suggest(word: object, candidates: Iterable[object],
            listing: Iterable[object] | None = None) -> str:
    """`; did you mean 'x'? (allowed: …)` or `; allowed: …` (`listing`: what to list, if not
    all the candidates)."""
    names = [str(v) for v in candidates]
    values = [str(v) for v in listing] if listing is not None else names
    hint = did_you_mean(word, names)
    if hint:
        return f"{hint} (allowed: {allowed(values)})"
    return f"; allowed: {allowed(values)}"


def allowed(values: Iterable[object]) -> str:
    """A readable list of allowed values (long lists are shortened)."""
    items = [str(v) for v in values]
    if len(items) > _LONGEST_LISTING:
        items = items[:_LONGEST_LISTING] + [f"… ({len(items) - _LONGEST_LISTING} more)"]
    return ", ".join(items) if items else "none"


def format_numbers(values: Iterable[int]) -> str:
    """`2–15`, `5`, `5, 10`, `3–5, 8`: integers with consecutive runs compressed."""
    runs: list[list[int]] = []
    for n in sorted(set(values)):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs]
    return ", ".join(parts)


def number(value: float) -> str:
    """`2` rather than `2.0` for a whole number."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def show(value: object) -> str:
    """A value as a message quotes it: `'text'`, `true`, `null`, `a mapping`, `42`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= _LONGEST_SHOWN else value[:_LONGEST_SHOWN - 3] + "…"
        return "'" + text.replace("\n", "\\n") + "'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def type_word(value: object) -> str:
    """What kind of value this is, in words: `an integer`, `a list`, `a boolean`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def plural(count: int, word: str) -> str:
    """`1 shot`, `2 shots`."""
    return f"{count} {word}{'' if count == 1 else 's'}"
