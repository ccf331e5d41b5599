"""``pgradar check --sample SECONDS``: sample database load for that long, judge it, and say it.

``check`` runs the sampler of every PostgreSQL target at its interval
(``intervals.load``, default 1 s) for the seconds asked, then classifies
again, so ``wait_bottleneck`` judges the samples taken (needing at least
``load_min_window_s`` of them). The JSON document gets a ``load`` section:
average active sessions (AAS) per database by wait event, and the top
statements by load with their wait profiles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pgradar.agent.model.findings import TextPolicy
from pgradar.agent.model.load import LoadWindow, top_statements
from pgradar.agent.runtime.agent import LOAD, Agent

TOP = 10  # statements listed per database


def sample_load(
    agent: Agent,
    seconds: float,
    wait: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, LoadWindow]:
    """Every target's sampler every interval for ``seconds``, then classify; the load sampled, per target."""
    runtimes = [rt for rt in agent.runtimes.values() if LOAD in rt.collector_names]
    interval = agent.config.interval(LOAD)
    start = clock()
    windows: dict[str, LoadWindow] = {}
    ticks = max(1, round(seconds / interval))
    for tick in range(ticks):
        for rt in runtimes:
            rt.run_collector(LOAD)
        left = start + (tick + 1) * interval - clock()
        if left > 0 and tick + 1 < ticks:
            wait(left)
    agent.classify()
    for rt in runtimes:
        with rt.state.lock:
            windows[rt.state.name] = rt.state.load.window(rt.state.cpus)
    return windows


def load_section(agent: Agent, windows: dict[str, LoadWindow], policy: TextPolicy, top: int = TOP) -> dict[str, Any]:
    """The JSON ``load`` section: per target and database, AAS by wait event and the top statements."""
    targets = []
    for name, window in windows.items():
        state = agent.state.target(name)
        status = state.collector(LOAD)
        texts = {queryid: text for (_, queryid), text in state.statement_texts.items()}
        seconds = window.seconds
        waits = window.waits()
        statements = window.statements()
        databases = []
        for database, db_seconds in sorted(window.databases().items(), key=lambda kv: -kv[1]):
            mine = sorted(((k, v) for k, v in waits.items() if k[0] == database), key=lambda kv: -kv[1])
            databases.append(
                {
                    "database": database,
                    "aas": _aas(db_seconds, seconds),
                    "waits": [
                        {
                            "wait_event_type": wtype,
                            "wait_event": event,
                            "aas": _aas(v, seconds),
                            "share": round(v / db_seconds, 3),
                        }
                        for (_, wtype, event), v in mine
                    ],
                    "top_statements": [
                        {
                            "queryid": str(s.queryid) if s.queryid is not None else None,
                            "statement": policy.show(texts.get(s.queryid)) if s.queryid is not None else None,
                            "aas": _aas(s.seconds, seconds),
                            "waits": [
                                {"wait_event_type": wtype, "wait_event": event, "aas": _aas(v, seconds)}
                                for wtype, event, v in s.waits
                            ],
                        }
                        for s in top_statements(statements, top, database)
                    ],
                }
            )
        targets.append(
            {
                "target": name,
                "seconds": round(seconds, 1),
                "samples": window.samples,
                "failed_samples": status.errors,
                "cpus": window.cpus,
                "databases": databases,
            }
        )
    return {"interval_s": agent.config.interval(LOAD), "targets": targets}


def _aas(part: float, seconds: float) -> float:
    return round(part / seconds, 3) if seconds > 0 else 0.0


def load_lines(section: Mapping[str, Any]) -> str:
    """The load section for a terminal or markdown: one line per database and per top statement."""
    lines = []
    for t in section["targets"]:
        lines.append(f"database load on {t['target']}: {t['samples']} samples over {t['seconds']:.0f}s")
        for d in t["databases"]:
            waits = ", ".join(f"{w['wait_event_type']}/{w['wait_event']} {w['aas']:.2f}" for w in d["waits"][:5])
            lines.append(f"  {d['database']}: {d['aas']:.2f} average active sessions ({waits})")
            for s in d["top_statements"][:5]:
                profile = ", ".join(f"{w['wait_event_type']}/{w['wait_event']}" for w in s["waits"][:3])
                lines.append(f"    queryid {s['queryid'] or 'other'}: {s['aas']:.2f} ({profile})")
    return "\n".join(lines) + "\n"
