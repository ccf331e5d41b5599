"""wait_bottleneck: one wait event (or class, or CPU) holds a large share of a database's load.

The load sampler counts every active backend once per interval under its
wait event (``model/load.py``); this rule reads the last ``load_window_s``
of it. A database whose average active sessions (AAS) reach
``load_min_aas`` has a bottleneck where one wait class holds at least
``load_wait_share`` of its load and still holds it over the last
``load_recent_s`` (so a fix applied shows on the next pass, not a window
later); the finding names the event when one holds most of the class
(``ONE_EVENT_SHARE``): a row-lock convoy waits on transactionid and tuple
alike, one cause, one finding. CPU is a bottleneck
only where the target's cores are known (``cpus:``) and the target's CPU
load exceeds them: a busy CPU is otherwise the work being done.

Evidence: the window, the database's AAS, the wait's AAS and share, what
the wait means (``waits.json``), the statements with the most load in that
wait, and for Lock waits the sessions that held the lock as sampled
(``pg_blocking_pids``). The fix is the knowledge base's, made specific: the
blocker to end, the setting and its current value, the statement.

``join_findings`` applies "one cause, one finding" after every rule ran:
Lock load in a database where ``lock_contention`` already names the blocked
sessions joins that finding's evidence; disk reads by a statement that a
``seq_scan`` or ``low_cache_hit`` finding names take that finding's fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pgradar.agent.model.activity import Settings
from pgradar.agent.model.findings import Finding, Kind, Severity, evidence_text, quote_ident
from pgradar.agent.model.load import CPU, LoadWindow, top_statements
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.model.waits import lookup, wait_class

TOP_LISTED = 5  # statements and blockers named in the evidence
NOT_A_BOTTLENECK = "none"  # the knowledge base's action of waits that are load but no bottleneck (pg_sleep)
ONE_EVENT_SHARE = 0.8  # of a class's load: the finding names the event, not only the class
MAIN_BLOCKER_SHARE = 0.5  # of the blocked load: one session holds the lock most waiters wait for


def _texts(obs: Observation) -> dict[int, str]:
    return {queryid: text for (_, queryid), text in obs.statement_texts.items()}


def _setting(settings: Settings | None, name: str) -> tuple[str, str] | None:
    """A setting as pg_settings reads it (value, unit), or None when not read."""
    if settings is None:
        return None
    return next(((value, unit) for n, value, unit in settings.raw if n == name), None)


def _memory(settings: Settings | None, name: str) -> int | None:
    """A memory setting in bytes."""
    found = _setting(settings, name)
    if found is None:
        return None
    value, unit = found
    scale = {"8kB": 8192, "kB": 1024, "MB": 1024**2, "B": 1, "": 1}.get(unit)
    return int(value) * scale if scale is not None and value.lstrip("-").isdigit() else None


def _size(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{max(1, n // 1024)}kB"


def _shown(settings: Settings | None, name: str) -> str:
    found = _setting(settings, name)
    if found is None:
        return "unknown"
    value, unit = found
    memory = _memory(settings, name)
    return _size(memory) if memory is not None and unit else value


def _fix(
    action: str,
    database: str,
    label: str,
    statements: Sequence[dict[str, Any]],
    blockers: Sequence[dict[str, Any]],
    blocked_seconds: float,
    settings: Settings | None,
) -> str:
    """The knowledge base's fix made specific: SQL that runs as printed (comments where the application must change)."""
    top = statements[0] if statements else None
    about = f"queryid {top['queryid']}" if top and top["queryid"] else "the top statement"
    db = quote_ident(database)
    if action == "end_blocker":
        main = blockers[0] if blockers else None
        if main is not None and main["blocked_seconds"] >= MAIN_BLOCKER_SHARE * blocked_seconds:
            fix = (
                f"SELECT pg_terminate_backend({main['pid']}); -- pid {main['pid']} ({main['state']}, user"
                f" {main['user']}) holds the lock most waiters queue behind; end it if it should not hold it"
            )
            if main["state"].startswith("idle in transaction"):
                fix += (
                    f"\nALTER ROLE {quote_ident(main['user'])} SET idle_in_transaction_session_timeout = '60s';"
                    " -- ends transactions left open this long"
                )
            return fix
        return (
            f"-- {label}: many transactions want the same rows or objects at once ({about}); no one session holds"
            " them long: shorten the transactions that update them, spread hot rows, or SKIP LOCKED for queues.\n"
            f"ALTER DATABASE {db} SET lock_timeout = '5s'; -- waiters give up instead of queueing without end"
        )
    if action == "wal":
        return (
            f"-- {label}: commits wait for WAL to be flushed ({about} writes most); batch small transactions.\n"
            f"ALTER DATABASE {db} SET synchronous_commit = off; -- only where losing the last commits on a crash is"
            f" acceptable (now {_shown(settings, 'synchronous_commit')})"
        )
    if action in ("shared_buffers", "read"):
        current = _memory(settings, "shared_buffers")
        more = f"'{_size(current * 2)}'" if current else "'<twice the current value>'"
        head = (
            f"-- {label}: {about} reads pages that are not in shared buffers: an index for its filter"
            " (its seq_scan or low_cache_hit finding names it), or a larger shared_buffers:\n"
        )
        return head + (
            f"ALTER SYSTEM SET shared_buffers = {more}; -- restart needed; now {_shown(settings, 'shared_buffers')}"
        )
    if action == "work_mem":
        current = _memory(settings, "work_mem")
        more = f"'{_size(current * 4)}'" if current else "'64MB'"
        return (
            f"ALTER DATABASE {db} SET work_mem = {more}; -- {label}: sorts and hashes of {about} spill to temporary"
            f" files; now {_shown(settings, 'work_mem')} (new sessions; or SET LOCAL work_mem in its transaction)"
        )
    if action == "lock_manager":
        return (
            f"-- {label}: {about} locks more relations than the fast-path slots hold (partitions, indexes):"
            " prune partitions with a WHERE on the partition key, drop unused indexes, use prepared statements."
            f" 18 sizes the slots from max_locks_per_transaction (now {_shown(settings, 'max_locks_per_transaction')})"
        )
    if action == "subtrans":
        return (
            f"-- {label}: transactions of {about} open more than 64 subtransactions (SAVEPOINTs, EXCEPTION"
            " blocks) beside a long transaction: remove the savepoints, end long transactions"
            + (
                f"; 17+: ALTER SYSTEM SET subtransaction_buffers (now {_shown(settings, 'subtransaction_buffers')})"
                if _setting(settings, "subtransaction_buffers")
                else ""
            )
        )
    if action == "multixact":
        return (
            f"-- {label}: shared row locks (foreign-key checks, FOR SHARE) by {about} on the same rows: fewer"
            " references to hot parent rows"
            + (
                f"; 17+: larger multixact_offset_buffers (now {_shown(settings, 'multixact_offset_buffers')})"
                f" and multixact_member_buffers (now {_shown(settings, 'multixact_member_buffers')})"
                if _setting(settings, "multixact_offset_buffers")
                else ""
            )
        )
    if action == "sync_rep":
        return (
            f"ALTER DATABASE {db} SET synchronous_commit = local; -- {label}: commits wait for the synchronous"
            " standby; only where a failover may lose the last commits; otherwise a faster or nearer standby"
        )
    if action == "vacuum_delay":
        return f"SET vacuum_cost_delay = 0; -- {label}: in the session of the manual VACUUM that should finish sooner"
    if action == "client":
        return f"-- {label}: {about} waits for its client: the application sends or reads slowly, or too many rows"
    if action == "plan":
        return (
            f"-- {label}: {about} holds most of this load: EXPLAIN (ANALYZE, BUFFERS) it with real values and make it"
            " cheaper (an index, less sorting, no per-row function), run it less often, or add cores"
        )
    return f"-- {label}: {about} holds most of this load (see docs/waits.md)"


def _statements(
    window: LoadWindow, database: str, wtype: str, event: str | None, texts: Mapping[int, str], seconds: float
) -> list[dict[str, Any]]:
    picked = {
        k: v for k, v in window.statements().items() if k[0] == database and k[2] == wtype and event in (None, k[3])
    }
    return [
        {
            "queryid": str(s.queryid) if s.queryid is not None else None,
            "statement": evidence_text(texts.get(s.queryid)) if s.queryid is not None else None,
            "aas": round(s.seconds / seconds, 2),
            "share": round(s.seconds / max(sum(picked.values()), 1e-9), 2),
        }
        for s in top_statements(picked, TOP_LISTED)
    ]


def _blockers(window: LoadWindow, database: str, texts: Mapping[int, str]) -> tuple[list[dict[str, Any]], float]:
    held = {k: v for k, v in window.blockers().items() if k[0] == database}
    ranked = sorted(held.items(), key=lambda kv: -kv[1])[:TOP_LISTED]
    return [
        {
            "pid": pid,
            "state": state,
            "user": user,
            "queryid": str(queryid) if queryid is not None else None,
            "statement": evidence_text(texts.get(queryid)) if queryid is not None else None,
            "blocked_seconds": round(seconds, 1),
        }
        for (_, queryid, state, pid, user), seconds in ranked
    ], sum(held.values())


def wait_bottleneck(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """One wait event (or class, or CPU above the cores) holding a large share of a busy database's load."""
    now = obs.now.timestamp()
    window = obs.load.since(now - t.load_window_s)
    seconds = window.seconds
    if seconds < t.load_min_window_s:
        return
    recent = obs.load.since(now - t.load_recent_s)
    waits, recent_waits = window.waits(), recent.waits()
    cpus = obs.load.cpus
    cpu_aas = sum(s for (_, wtype, _), s in waits.items() if wtype == CPU) / seconds
    texts = _texts(obs)
    settings = obs.snapshots.settings.settings if obs.snapshots.settings is not None else None
    for database, db_seconds in sorted(window.databases().items()):
        aas = db_seconds / seconds
        if aas < t.load_min_aas:
            continue
        events: dict[tuple[str, str], float] = {}
        classes: dict[str, float] = {}
        for (db, wtype, name), s in waits.items():
            entry = lookup(wtype, name)
            if db == database and (entry is None or entry.action != NOT_A_BOTTLENECK):
                events[(wtype, name)] = events.get((wtype, name), 0.0) + s
                classes[wtype] = classes.get(wtype, 0.0) + s
        recent_db = sum(s for (db, _, _), s in recent_waits.items() if db == database)
        for wtype, held in sorted(classes.items(), key=lambda kv: -kv[1]):
            if held < t.load_wait_share * db_seconds:
                continue
            if wtype == CPU and (cpus is None or cpu_aas <= cpus):
                continue
            still = sum(v for (db, wt, _), v in recent_waits.items() if db == database and wt == wtype)
            if recent_db <= 0 or still < t.load_wait_share * recent_db:
                continue  # over: the fix applied, or the burst passed
            name, most = max(((e, v) for (wt, e), v in events.items() if wt == wtype), key=lambda ev: ev[1])
            event = name if most >= ONE_EVENT_SHARE * held else None
            yield _finding(obs, t, database, aas, wtype, event, held, seconds, window, texts, settings, cpu_aas)


def _finding(
    obs: Observation,
    t: Thresholds,
    database: str,
    aas: float,
    wtype: str,
    event: str | None,
    wait_seconds: float,
    seconds: float,
    window: LoadWindow,
    texts: Mapping[int, str],
    settings: Settings | None,
    cpu_aas: float,
) -> Finding:
    events = sorted(
        ((e, v) for (db, wt, e), v in window.waits().items() if db == database and wt == wtype), key=lambda ev: -ev[1]
    )
    entry = lookup(wtype, event if event is not None else events[0][0])  # the class: its heaviest event's fix
    kind_of = wait_class(wtype)
    label = f"{wtype}/{event}" if event is not None and event != wtype else wtype
    statements = _statements(window, database, wtype, event, texts, seconds)
    blockers, blocked = _blockers(window, database, texts) if wtype == "Lock" else ([], 0.0)
    action = entry.action if entry is not None else {"Lock": "end_blocker", CPU: "plan"}.get(wtype, "generic")
    share = wait_seconds / (aas * seconds)
    wait_aas = wait_seconds / seconds
    cpus = obs.load.cpus
    severity = Severity.CRITICAL if cpus is not None and wait_aas >= cpus else Severity.WARNING
    top = f"; top statement queryid {statements[0]['queryid']}" if statements and statements[0]["queryid"] else ""
    cores = f" on {cpus:g} cores (CPU load {cpu_aas:.1f})" if wtype == CPU and cpus is not None else ""
    return Finding(
        Kind.WAIT_BOTTLENECK,
        severity,
        obs.target,
        f"{label} holds {share:.0%} of the load of {database} ({wait_aas:.1f} of {aas:.1f} average active"
        f" sessions over {seconds:.0f}s){cores}{top}",
        _fix(action, database, label, statements, blockers, blocked, settings),
        {
            "window_seconds": round(seconds, 1),
            "samples": window.samples,
            "aas": round(aas, 2),
            "wait_event_type": wtype,
            "wait_event": event,
            "wait_aas": round(wait_aas, 2),
            "share": round(share, 3),
            "events": {f"{wtype}/{e}": round(v / seconds, 2) for e, v in events[:TOP_LISTED]},
            "means": (
                entry.means
                if entry is not None and event is not None
                else kind_of.means
                if kind_of is not None
                else None
            ),
            "top_statements": statements,
            "blockers": blockers,
            "cpus": cpus,
            "cpu_aas": round(cpu_aas, 2),
        },
        database=database,
        wait_event=label,
    )


def join_findings(findings: list[Finding]) -> list[Finding]:
    """One cause, one finding: Lock load joins lock_contention; disk reads take a seq_scan's or low_cache_hit's fix."""
    locks = {f.database: i for i, f in enumerate(findings) if f.kind == Kind.LOCK_CONTENTION}
    by_statement = {
        (f.database, f.queryid): f
        for f in findings
        if f.kind in (Kind.SEQ_SCAN, Kind.LOW_CACHE_HIT) and f.queryid is not None and f.recommendation
    }
    out = list(findings)
    gone: set[int] = set()
    for i, f in enumerate(findings):
        if f.kind != Kind.WAIT_BOTTLENECK:
            continue
        evidence = f.evidence
        if evidence.get("wait_event_type") == "Lock" and f.database in locks:
            j = locks[f.database]
            out[j] = replace(out[j], evidence={**out[j].evidence, "load": dict(evidence)})
            gone.add(i)
            continue
        top = (evidence.get("top_statements") or [{}])[0].get("queryid")
        named = by_statement.get((f.database, top))
        if evidence.get("wait_event_type") in ("IO", "IPC") and named is not None:
            out[i] = replace(
                f,
                recommendation=named.recommendation,
                evidence={**evidence, "fix_from": {"kind": named.kind.value, "id": named.id}},
            )
    return [f for i, f in enumerate(out) if i not in gone]


CLASSIFIERS = (wait_bottleneck,)
