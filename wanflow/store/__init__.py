"""Persistent state: content-addressed objects, result records, the journal and the lock file."""
