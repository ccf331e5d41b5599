"""Taking an Observation of one target's state: the one place classifiers' input is cut from the runtime."""

from __future__ import annotations

from datetime import datetime

from pgradar.agent.model.observation import Observation
from pgradar.agent.runtime.state import TargetState


def observe(state: TargetState, now: datetime) -> Observation:
    """A consistent, immutable view of one target (taken under its lock)."""
    with state.lock:
        history = state.kept()
        return Observation(
            target=state.name,
            now=now,
            server=state.server,
            snapshots=history.latest,
            history=history,
            statement_intervals=tuple(state.statement_intervals),
            # The agent's own texts (DESIGN 4) are known to the state, never to a classifier.
            statement_texts={k: v for k, v in state.statement_texts.items() if k not in state.own_statements},
            load=state.load.window(state.cpus),
        )
