"""One statement, one finding: the deltas of the queryids of one statement text, summed.

pg_stat_statements keys a statement by its parse tree, parameter types
included, so one statement can come under several queryids: psycopg 3 binds
ints as int2, int4 or int8 by value, and an ORM writes ``$1::INTEGER`` or
``$1::BIGINT`` as its values' types go. Every statement rule judges the
group (``sqlshape.group_key``: the text with whitespace, case and the casts
of parameters aside), names one queryid (the largest: stable while the set
is) and lists them all in its evidence; the metrics keep one series per
queryid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.statements import StatementDelta
from pgradar.agent.sqlshape import group_key


@dataclass(slots=True)
class StatementGroup:
    """What one statement text (its queryids together) did in one database in the interval."""

    database: str
    dbid: int
    text: str | None
    queryids: list[int] = field(default_factory=list)
    usernames: list[str] = field(default_factory=list)  # costliest first
    calls: int = 0
    rows: int = 0
    exec_ms: float = 0.0
    blocks_hit: int = 0
    blocks_read: int = 0
    temp_blks_written: int = 0
    blk_read_ms: float = 0.0

    @property
    def queryid(self) -> int:
        """The queryid a finding names: the largest of the group's (listed first)."""
        return self.queryids[0]

    @property
    def queryid_list(self) -> list[str]:
        """Every queryid of the group, as the evidence lists them."""
        return [str(q) for q in self.queryids]

    @property
    def rows_per_call(self) -> float:
        return self.rows / self.calls if self.calls else 0.0

    @property
    def mean_exec_ms(self) -> float:
        return self.exec_ms / self.calls if self.calls else 0.0

    @property
    def blocks(self) -> int:
        """Shared buffers touched: hit + read."""
        return self.blocks_hit + self.blocks_read

    @property
    def blocks_per_call(self) -> float:
        return self.blocks / self.calls if self.calls else 0.0


def statement_groups(
    obs: Observation, deltas: Sequence[StatementDelta], toplevel_only: bool = True
) -> tuple[StatementGroup, ...]:
    """Deltas grouped by database and ``group_key`` (queryid alone when the text is unknown), in the
    order of their costliest delta; nested statements (run inside a function) only when asked.

    Grouped once per interval, not by each of five rules at every pass: the
    groups are shared, to be read and never changed.
    """
    return _grouped(deltas, toplevel_only, texts=obs.statement_texts)


@per_snapshot  # the texts of an interval's statements were fetched with the poll that made it
def _grouped(
    deltas: Sequence[StatementDelta], toplevel_only: bool, texts: Mapping[tuple[int, int], str]
) -> tuple[StatementGroup, ...]:
    groups: dict[tuple[str, str], StatementGroup] = {}
    for d in deltas:
        if toplevel_only and not d.toplevel:
            continue
        text = texts.get((d.dbid, d.queryid))
        key = (d.database, group_key(text) if text is not None else f"#{d.queryid}")
        g = groups.setdefault(key, StatementGroup(d.database, d.dbid, text))
        if d.queryid not in g.queryids:
            g.queryids.append(d.queryid)
        if d.username not in g.usernames:
            g.usernames.append(d.username)
        g.calls += d.calls
        g.rows += d.rows
        g.exec_ms += d.total_exec_ms
        g.blocks_hit += d.shared_blks_hit
        g.blocks_read += d.shared_blks_read
        g.temp_blks_written += d.temp_blks_written
        g.blk_read_ms += d.blk_read_ms
    for g in groups.values():
        g.queryids.sort(reverse=True)  # the largest first: the one a finding names
    return tuple(groups.values())
