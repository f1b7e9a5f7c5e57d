"""Planning: typed tasks, the exact requests they send, content keys, and why each task runs."""
