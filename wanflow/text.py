"""Text from a spec, a cache or a server, made safe to show on a terminal or in a CI log.

A spec's name, a prompt or a provider's message can carry escape sequences, line breaks or
bidirectional-override characters; printed raw they could rewrite what a terminal shows,
forge lines in a CI log, or spoof a GitHub annotation. Everything wanflow prints passes
through `terminal`, and values quoted inside messages through `shown`.
"""
from __future__ import annotations

import unicodedata

# Control (Cc), format (Cf: bidi overrides, zero-width joiners...), line and paragraph
# separators (Zl, Zp), unassigned and surrogate code points (Cn, Cs).
_UNSAFE = frozenset(("Cc", "Cf", "Zl", "Zp", "Cn", "Cs"))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def shown(text: object) -> str:
    """`text` on one line with every unsafe character escaped (`\\n`, `\\x1b`, `\\u202e`)."""
    s = str(text)
    if s.isprintable():   # the common case: nothing to do
        return s
    return "".join(_escape(ch) if unicodedata.category(ch) in _UNSAFE else ch for ch in s)


def terminal(text: object) -> str:
    """`text` as printed by wanflow: line breaks kept, every other unsafe character escaped."""
    return "\n".join(shown(line) for line in str(text).split("\n"))
