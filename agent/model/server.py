"""What a server is and can do.

Callers ask a capability ("does this server have GENERIC_PLAN?") instead of
comparing version numbers; this is the one place that knows which release
brought what. SQL variants are chosen by ``collect.queries`` from ``major``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OLDEST_SUPPORTED = 13
NEWEST_SUPPORTED = 18


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version_num: int  # server_version_num, e.g. 150020
    in_recovery: bool
    started_at: datetime | None = None
    pgss_schema: str | None = None  # schema of pg_stat_statements in the maintenance database
    pgss_preloaded: bool = False  # pg_stat_statements in shared_preload_libraries
    is_superuser: bool = False
    has_pg_monitor: bool = False

    @property
    def major(self) -> int:
        return self.version_num // 10000

    @property
    def version(self) -> str:
        return f"{self.major}.{self.version_num % 10000}"

    @property
    def role(self) -> str:
        return "standby" if self.in_recovery else "primary"

    @property
    def supported(self) -> bool:
        return self.major >= OLDEST_SUPPORTED

    # Capabilities ------------------------------------------------------------

    @property
    def has_pgss_toplevel(self) -> bool:
        """pg_stat_statements.toplevel and pg_stat_statements_info (14+)."""
        return self.major >= 14

    @property
    def has_query_id_in_activity(self) -> bool:
        """pg_stat_activity.query_id (14+, filled when compute_query_id is on)."""
        return self.major >= 14

    @property
    def has_generic_plan(self) -> bool:
        """EXPLAIN (GENERIC_PLAN) plans a statement with $n parameters (16+)."""
        return self.major >= 16

    @property
    def has_pgss_stats_since(self) -> bool:
        """pg_stat_statements.stats_since: when each entry began counting (17+)."""
        return self.major >= 17


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """Which cluster, since which start: a baseline of counters is compared with a later reading only on the same."""

    system_identifier: str  # pg_control_system(), as text (a bigint beyond JSON's safe integers)
    started_at: datetime  # pg_postmaster_start_time(): counters do not survive every restart
