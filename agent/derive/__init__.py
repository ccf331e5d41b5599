"""Derivations from snapshots: deltas and rates, per-snapshot indexes, index merges, lag arithmetic.

Pure functions over the model: no I/O, so classifiers and exporters may both use them.
"""
