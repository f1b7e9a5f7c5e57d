"""Persistent state: content-addressed objects, result records, the journal and the lock file.

`Store` is a cache directory: `objects` (the content store) and `actions` (the action
cache, key -> result record). `journal` and `lockfile` hold what a run must not forget.
`remote` is the team's tier behind it (object storage), and `claims` what lets a fleet of
runners sharing it pay once per key.
"""
from .actions import Result
from .cache import Store

__all__ = ["Result", "Store"]
