"""What a pgbouncer's admin console shows: pools, database entries, totals, configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PoolStat:
    """SHOW POOLS: one pool (database, user) of a pgbouncer."""

    database: str
    user: str
    cl_active: int
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int
    sv_tested: int
    sv_login: int
    maxwait_seconds: float
    pool_mode: str

    @property
    def name(self) -> str:
        return f"{self.database}/{self.user}"

    @property
    def servers(self) -> int:
        return self.sv_active + self.sv_idle + self.sv_used + self.sv_tested + self.sv_login


@dataclass(frozen=True, slots=True)
class BouncerDatabase:
    """SHOW DATABASES: the pool limits of one pgbouncer database entry."""

    name: str
    host: str
    port: int | None
    database: str  # the server's database it points at
    pool_size: int
    reserve_pool: int
    pool_mode: str
    max_connections: int  # max_db_connections for this entry; 0 is unlimited
    current_connections: int
    paused: bool
    disabled: bool


@dataclass(frozen=True, slots=True)
class BouncerStat:
    """SHOW STATS: totals per database since pgbouncer started."""

    database: str
    transactions: int
    queries: int
    received_bytes: int
    sent_bytes: int
    xact_seconds: float
    query_seconds: float
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class BouncerSnapshot:
    taken_at: datetime
    pools: tuple[PoolStat, ...]
    databases: tuple[BouncerDatabase, ...]
    stats: tuple[BouncerStat, ...]
    config: tuple[tuple[str, str], ...]  # SHOW CONFIG (key, value)

    def setting(self, key: str) -> str | None:
        return next((v for k, v in self.config if k == key), None)

    def database(self, name: str) -> BouncerDatabase | None:
        return next((d for d in self.databases if d.name == name), None)
