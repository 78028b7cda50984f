"""Migration scripts, one per revision, chained from ``0001``."""
