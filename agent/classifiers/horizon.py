"""The xmin horizon: who keeps vacuum from removing dead rows, and the statement that lets go.

Vacuum removes a dead row only once no transaction could still see it: the
oldest snapshot anyone keeps (the xmin horizon) bounds its work. A session
left in a transaction, a prepared transaction nobody finishes, a slot nobody
reads and a standby's long query (through hot_standby_feedback) each hold it
back, and every table in reach keeps its dead rows until they let go. This
rule names the holder and the statement that releases it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pgradar.agent.classifiers.replication import inactive_for, slot_severity, standby_peer
from pgradar.agent.model.activity import SessionStat
from pgradar.agent.model.findings import Finding, Kind, Severity, human_seconds, quote_ident
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.replication import SlotStat
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.model.vacuum import BACKEND, PREPARED, SLOT, STANDBY, HorizonHolder

MAX_HOLDERS = 10  # holders named in one finding's evidence


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def horizon_severity(held_s: float, xmin_age: int, t: Thresholds) -> Severity | None:
    """Critical past ``xmin_horizon_critical_s`` or ``xmin_horizon_critical_xids``; warning past the warning time."""
    if held_s >= t.xmin_horizon_critical_s or xmin_age >= t.xmin_horizon_critical_xids:
        return Severity.CRITICAL
    if held_s >= t.xmin_horizon_warning_s:
        return Severity.WARNING
    return None


def _standby_oldest(obs: Observation, standby: str) -> tuple[str, SessionStat] | None:
    """A watched standby's oldest open transaction: on a standby with feedback on, what holds the primary's horizon."""
    peer = standby_peer(obs, standby)
    if peer is None:
        return None
    sessions = obs.peers[peer[0]].snapshots.sessions
    if sessions is None:
        return None
    open_ = [s for s in sessions.sessions if s.xact_seconds is not None]
    return (peer[0], max(open_, key=lambda s: s.xact_seconds or 0.0)) if open_ else None


def held_for(obs: Observation, h: HorizonHolder) -> tuple[float, str]:
    """How long ``h`` has held its xmin, and who says so: the server, a watched standby, or pgradar's watch."""
    if h.held_seconds is not None:
        return h.held_seconds, "server"
    if h.holder == STANDBY and (oldest := _standby_oldest(obs, h.name)) is not None:
        return max(h.seen_seconds, oldest[1].xact_seconds or 0.0), f"standby target {oldest[0]}"
    return h.seen_seconds, "seen by pgradar"


def _slot(obs: Observation, name: str) -> SlotStat | None:
    rep = obs.snapshots.replication
    return next((s for s in rep.slots if s.slot == name), None) if rep is not None else None


def _slot_reported_inactive(obs: Observation, slot: SlotStat | None, t: Thresholds) -> bool:
    """The slot is a replication_slot_inactive finding too: that finding carries its fix (one cause, one fix)."""
    if slot is None:
        return False
    settings = obs.snapshots.settings
    max_wal = settings.settings.max_wal_size_bytes if settings is not None else None
    return slot_severity(slot, t, max_wal, inactive_for(obs, slot)[0]) is not None


def holder_fix(obs: Observation, h: HorizonHolder, t: Thresholds) -> str:
    """The statement that releases the horizon ``h`` holds, as it runs (a comment where it runs elsewhere)."""
    if h.holder == BACKEND:
        return f"SELECT pg_terminate_backend({h.pid}); -- ends session {h.pid} and its transaction"
    if h.holder == PREPARED:
        return (
            f"ROLLBACK PREPARED {_literal(h.name)}; -- in database {quote_ident(h.database)}, as its owner "
            f"{h.username} or a superuser; or COMMIT PREPARED {_literal(h.name)}; if its transaction manager "
            "decided to commit"
        )
    if h.holder == SLOT:
        if _slot_reported_inactive(obs, _slot(obs, h.name), t):
            return f"-- slot {h.name}: dropped by the fix of its replication_slot_inactive finding"
        consumer = f"its consumer (pid {h.pid}) catches up or " if h.active else ""
        return f"SELECT pg_drop_replication_slot({_literal(h.name)}); -- unless {consumer}it is still needed"
    oldest = _standby_oldest(obs, h.name)
    ends = (
        f"on standby {h.name} (target {oldest[0]}): SELECT pg_terminate_backend({oldest[1].pid});"
        if oldest is not None
        else f"on standby {h.name}: end its oldest transaction (pg_stat_activity ORDER BY xact_start)"
    )
    return (
        f"-- {ends} -- or there: ALTER SYSTEM SET hot_standby_feedback = off; SELECT pg_reload_conf(); "
        "(its queries may then be cancelled by replay)"
    )


def _name(h: HorizonHolder) -> str:
    if h.holder == BACKEND:
        return f"session pid {h.pid} (user {h.username}, application {h.application or '-'}, {h.state or 'no state'})"
    if h.holder == PREPARED:
        return f"prepared transaction {_literal(h.name)} (owner {h.username})"
    if h.holder == SLOT:
        what = "catalog_xmin" if h.catalog_only else "xmin"
        return f"{h.application} replication slot {h.name} ({what}, {'active' if h.active else 'inactive'})"
    return f"standby {h.name}'s hot_standby_feedback"


def _describe(h: HorizonHolder, held_s: float, basis: str, fix: str) -> dict[str, Any]:
    return {
        "holder": h.holder,
        "name": h.name,
        "pid": h.pid,
        "database": h.database or None,
        "user": h.username or None,
        "application": h.application or None,
        "state": h.state or None,
        "queryid": str(h.queryid) if h.queryid is not None else None,
        "xmin": h.xmin,
        "xmin_age": h.xmin_age,
        "held_seconds": round(held_s, 1),
        "held_seconds_from": basis,
        "catalog_only": h.catalog_only,
        "fix": fix,
    }


def _dead_rows(obs: Observation, database: str) -> int | None:
    """Dead rows in the user tables of ``database`` ('' for all), as the last tables poll counted them."""
    tables = obs.snapshots.tables
    if tables is None:
        return None
    return sum(r.n_dead_tup for r in tables.tables if not database or r.database == database)


def xmin_horizon_held(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """A holder has kept the xmin horizon past ``xmin_horizon_warning_s`` and vacuum leaves dead rows behind it.

    One finding per database it holds (a physical slot's and a standby's
    feedback hold every database: no database), each holder named with the
    statement that releases it: ``pg_terminate_backend`` for a session,
    ``ROLLBACK``/``COMMIT PREPARED`` for a prepared transaction,
    ``pg_drop_replication_slot`` for a slot (given once: an inactive slot's
    fix is its replication_slot_inactive finding's), the long query or
    ``hot_standby_feedback`` on a standby. The time held is the server's
    where it records it (a transaction's start, a PREPARE, an inactive
    slot's ``inactive_since`` on 17+ or state file on 15 and 16), a watched standby's oldest transaction, else how
    long pgradar has seen the same xmin held. Dead rows: the database's
    user tables' ``n_dead_tup``; a logical slot's catalog_xmin keeps only the
    catalogs' dead rows, which those do not count, so it needs none.
    Evidence: the holders (kind, name, pid, user, application, state,
    queryid, xmin and its age, seconds held and who says so), dead rows.
    On a standby nothing is judged: its holders show on the primary.
    """
    snapshot = obs.snapshots.vacuum
    if snapshot is None or obs.on_standby:
        return
    by_scope: dict[str, list[tuple[HorizonHolder, float, str, Severity]]] = {}
    for h in snapshot.holders:
        if h.xmin_age <= 0:
            continue  # its xmin is the next transaction id: no row has died since (an idle server's standby)
        held_s, basis = held_for(obs, h)
        severity = horizon_severity(held_s, h.xmin_age, t)
        if severity is not None:
            by_scope.setdefault(h.database if h.holder in (BACKEND, PREPARED) or h.catalog_only else "", []).append(
                (h, held_s, basis, severity)
            )
    for scope, held in sorted(by_scope.items()):
        dead = _dead_rows(obs, scope)
        if not all(h.catalog_only for h, *_ in held) and not dead:
            continue  # nothing is kept yet: vacuum has no dead row to leave behind
        yield _horizon_finding(obs, t, scope, held, dead)


def _horizon_finding(
    obs: Observation,
    t: Thresholds,
    scope: str,
    held: Sequence[tuple[HorizonHolder, float, str, Severity]],
    dead: int | None,
) -> Finding:
    ordered = sorted(held, key=lambda x: (-x[1], -x[0].xmin_age))
    worst, held_s, _, _ = ordered[0]
    severity = max((x[3] for x in ordered), key=lambda s: s.rank)
    fixes = [holder_fix(obs, h, t) for h, *_ in ordered]
    where = f"in {scope}" if scope else "in every database"
    keeps = (
        f"vacuum leaves {dead:,} dead rows behind it"
        if dead
        else "the system catalogs keep their dead rows (a logical slot's catalog_xmin)"
    )
    others = f" and {len(ordered) - 1} other holder(s)" if len(ordered) > 1 else ""
    return Finding(
        Kind.XMIN_HORIZON_HELD,
        severity,
        obs.target,
        f"the xmin horizon {where} is held back {human_seconds(held_s)} ({worst.xmin_age:,} transactions) by "
        f"{_name(worst)}{others}: {keeps}",
        "\n".join(dict.fromkeys(fixes)),
        {
            "holder": worst.holder,
            "held_seconds": round(held_s, 1),
            "xmin_age": worst.xmin_age,
            "dead_rows": dead,
            "holders": [_describe(h, s, b, f) for (h, s, b, _), f in zip(ordered[:MAX_HOLDERS], fixes, strict=False)],
        },
        database=scope or None,
    )


CLASSIFIERS = (xmin_horizon_held,)
