"""The schedule table and the scheduler sidecar (a later issue)."""
