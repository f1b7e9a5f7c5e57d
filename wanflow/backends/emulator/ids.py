"""Deterministic ids: one seeded stream for task ids, request ids and upload folders."""
from __future__ import annotations

import random
import threading
import uuid


class Ids:
    """Ids drawn from a seed, so that two emulators with the same seed hand out the same ids."""

    def __init__(self, seed: int):
        self._rng = random.Random(f"ids:{seed}")
        self._lock = threading.Lock()

    def uuid(self) -> str:
        """A version-4 UUID, the shape of DashScope's task and request ids."""
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def token(self) -> str:
        """32 hex digits."""
        with self._lock:
            return f"{self._rng.getrandbits(128):032x}"
