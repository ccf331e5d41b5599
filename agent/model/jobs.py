"""The scheduled jobs by name, with their default intervals: a leaf module.

The command line's ``--help`` lists these and the config schema validates
``intervals:`` against them, and neither may import the collectors (which pull
in psycopg and sqlglot): ``pgradar --help`` must answer at once. The
collector registry (``registry.COLLECTORS``) pairs each name with its code;
a unit test keeps the two in step.
"""

from __future__ import annotations

# collector name -> default seconds between polls
COLLECTOR_INTERVALS: dict[str, float] = {
    "server": 15,
    "activity": 15,
    "database": 30,
    "statements": 60,
    "tables": 300,
    "indexes": 300,
    "settings": 300,
    "sizes": 300,
    "foreign_keys": 300,
    "plans": 60,
    "replication": 15,
    "sessions": 15,
    "auto_explain": 30,
    "explain_analyze": 300,
    "load": 1,  # database load: sampled every second (model/load.py)
    "vacuum": 15,
    "bloat": 3600,  # bloat builds over days; one estimate costs ~80 ms a database of 1,000 tables
}
COLLECTOR_NAMES = tuple(COLLECTOR_INTERVALS)
# Classification is a scheduled job like a collector, on the agent's own state; pgbouncer: its admin
# console, per pgbouncer target.
JOB_INTERVALS: dict[str, float] = {"classify": 15.0, "pgbouncer": 15.0}
