"""Frozen types of what the agent reads and derives: rows, snapshots, plans, deltas. No I/O here."""
