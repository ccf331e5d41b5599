"""What classifiers read: one target's latest state, frozen at one moment.

Classifiers are pure functions of an Observation and the thresholds; they do
no I/O and read no clock (``now`` is in here), so a unit test builds an
Observation by hand and checks the findings. The runtime takes one under the
target's lock (``pgradar.agent.runtime.observation.observe``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from pgradar.agent.model.load import LoadWindow
from pgradar.agent.model.server import ServerInfo
from pgradar.agent.model.snapshots import SnapshotHistory, Snapshots
from pgradar.agent.model.statements import StatementInterval


@dataclass(frozen=True, slots=True)
class Observation:
    target: str
    now: datetime
    server: ServerInfo | None = None
    snapshots: Snapshots = field(default_factory=Snapshots)  # the latest of each collector
    history: SnapshotHistory = field(default_factory=SnapshotHistory)  # every kept snapshot of each collector
    statement_intervals: tuple[StatementInterval, ...] = ()
    statement_texts: Mapping[tuple[int, int], str] = field(default_factory=dict)  # (dbid, queryid) -> text
    # The other targets of the same agent (a primary's standbys, a standby's
    # primary), for problems seen from both ends.
    peers: Mapping[str, Observation] = field(default_factory=dict)
    load: LoadWindow = field(default_factory=LoadWindow)  # the sampled load's last hour (model/load.py)

    @property
    def on_standby(self) -> bool:
        return self.server is not None and self.server.in_recovery

    @property
    def primary_watched(self) -> bool:
        """A primary is among the peers: a standby's catalog problems are reported there, once."""
        return any(p.server is not None and not p.server.in_recovery for p in self.peers.values())


def with_peers(observations: Mapping[str, Observation]) -> dict[str, Observation]:
    """Each observation with every other one as its peers."""
    return {
        name: replace(obs, peers={n: o for n, o in observations.items() if n != name})
        for name, obs in observations.items()
    }
