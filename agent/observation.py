"""What classifiers read: one target's latest state, frozen at one moment.

Classifiers are pure functions of an Observation and the thresholds; they do
no I/O and read no clock (``now`` is in here), so a unit test builds an
Observation by hand and checks the findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pgradar.agent.analysis import StatementInterval
from pgradar.agent.queries import is_own
from pgradar.agent.server import ServerInfo
from pgradar.agent.state import TargetState


@dataclass(frozen=True, slots=True)
class Observation:
    target: str
    now: datetime
    server: ServerInfo | None = None
    snapshots: Mapping[str, Any] = field(default_factory=dict)  # collector -> latest snapshot
    history: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # collector -> kept snapshots
    statement_intervals: tuple[StatementInterval, ...] = ()
    statement_texts: Mapping[tuple[int, int], str] = field(default_factory=dict)  # (dbid, queryid) -> text
    # The other targets of the same agent (a primary's standbys, a standby's
    # primary), for problems seen from both ends.
    peers: Mapping[str, Observation] = field(default_factory=dict)

    def latest(self, collector: str) -> Any:
        return self.snapshots.get(collector)

    @property
    def on_standby(self) -> bool:
        return self.server is not None and self.server.in_recovery

    @property
    def primary_watched(self) -> bool:
        """A primary is among the peers: a standby's catalog problems are reported there, once."""
        return any(p.server is not None and not p.server.in_recovery for p in self.peers.values())


def observe(state: TargetState, now: datetime) -> Observation:
    """A consistent, immutable view of one target (taken under its lock)."""
    with state.lock:
        return Observation(
            target=state.name,
            now=now,
            server=state.server,
            snapshots={name: history[-1] for name, history in state.snapshots.items() if history},
            history={name: tuple(history) for name, history in state.snapshots.items()},
            statement_intervals=tuple(state.statement_intervals),
            # The agent's own texts (DESIGN 4) are known to the state, never to a classifier.
            statement_texts={k: v for k, v in state.statement_texts.items() if not is_own(v)},
        )


def with_peers(observations: Mapping[str, Observation]) -> dict[str, Observation]:
    """Each observation with every other one as its peers."""
    out = {}
    for name, obs in observations.items():
        peers = {n: o for n, o in observations.items() if n != name}
        out[name] = Observation(
            obs.target,
            obs.now,
            obs.server,
            obs.snapshots,
            obs.history,
            obs.statement_intervals,
            obs.statement_texts,
            peers,
        )
    return out
