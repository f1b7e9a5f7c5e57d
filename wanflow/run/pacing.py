"""Pacing shared by the executor and the HTTP backend: one rate limiter, one backoff."""
from __future__ import annotations

import asyncio
import random
import time


class Pacer:
    """Grants at most `rate` starts per second, evenly spaced, in the order asked.

    The reservation is synchronous (no await between reading and moving `_next`), so
    concurrent tasks on one event loop can never both take the same slot. `margin` > 1
    spaces starts a little wider, which keeps them inside a sliding one-second window
    even when network jitter bunches two of them together.
    """

    def __init__(self, rate: float, margin: float = 1.0):
        self.interval = margin / rate if rate > 0 else 0.0
        self._next = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def backoff(attempt: int, base: float, cap: float) -> float:
    """Delay before retry `attempt` (0-based): base·2^attempt capped at `cap`, times a
    random factor in [0.5, 1) so that many clients retrying at once spread out."""
    return random.uniform(0.5, 1.0) * min(cap, base * (2 ** attempt))
