"""Timestamped prompts, split into beats: `Shot 1 [0-3s] Wide shot: … Shot 2 [3-6s] …`.

Wan 2.7 takes multi-shot structure as timestamps in the prompt text (the Wan guide writes
`[0-2s]`, optionally after `Shot N`). The preview card shows the beat on screen at each
moment and the review page lists them; the prompt itself is sent unchanged. Pure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# `[0-3s]`, `[2.5-4 s]`, `[0–3s]`, optionally led by `Shot N` (which belongs to the beat).
_MARK = re.compile(r"(?:\bshot\s*\d+\s*[:,-]?\s*)?\[\s*(\d+(?:\.\d+)?)\s*[-–—~]\s*"
                   r"(\d+(?:\.\d+)?)\s*s(?:ec(?:onds?)?)?\s*\]\s*[:.,-]?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Beat:
    start: float
    end: float
    text: str


def split(prompt: str) -> tuple[str, tuple[Beat, ...]]:
    """(the text before the first timestamp, the beats in order). No timestamps: the whole
    prompt and no beats. Marks that run backwards or overlap are taken as written."""
    marks = [m for m in _MARK.finditer(prompt) if float(m.group(2)) > float(m.group(1))]
    if not marks:
        return prompt.strip(), ()
    beats = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(prompt)
        text = " ".join(prompt[m.end():end].split())
        beats.append(Beat(float(m.group(1)), float(m.group(2)), text))
    return " ".join(prompt[:marks[0].start()].split()), tuple(beats)

