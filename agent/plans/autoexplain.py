"""auto_explain plans from the server log: estimated against actual rows.

When a user points pgradar at the server log (``targets[i].auto_explain_log``)
and the server runs auto_explain with ``log_format = json`` and
``log_analyze = on``, each logged plan carries the planner's estimate
(``Plan Rows``) and what happened (``Actual Rows``) for every node. This
module reads the log incrementally and keeps, per statement, the nodes of
its latest plan; the ``row_misestimate`` classifier judges them.

Two log formats are read, line by line:

- ``stderr`` (and ``csvlog``-free plain files, as ``pg_ctl -l`` writes):
  a message starts on a line of its own and the JSON plan follows on
  continuation lines that start with a tab;
- ``jsonlog`` (15+, with the logging collector): one JSON object a line,
  the plan inside ``message``, the database in ``dbname``.

Bounded memory and work: at most ``chunk_bytes`` read per call, a message
longer than ``max_message_bytes`` is dropped, at most ``max_plans``
statements kept (the least recently seen go first). A rotated or truncated
file (another inode, or shorter than where reading stopped) is read from its
start; what the old file got after the last read is lost. A partial last
line waits for the next call. On first sight of a file only its last
``backlog_bytes`` are read.

The same reader keeps the latest deadlock reports (``ERROR: deadlock
detected`` with its DETAIL, CONTEXT and STATEMENT lines, or the jsonlog
entry's fields): the processes' statements with literals blanked, and the
relations named in the context, for the ``deadlocks`` finding; and the
statements cancelled by ``statement_timeout`` (``ERROR: canceling statement
due to statement timeout`` and the ``STATEMENT:`` line that
``log_min_error_statement = error``, the default, adds; the jsonlog entry's
``statement``), with the database, role and application where the log
says them, for the ``statement_timeout`` finding.

Statements map to queryids through ``Query Identifier``, which auto_explain
logs on 14+ with ``auto_explain.log_verbose = on`` and ``compute_query_id``
on (``auto`` with pg_stat_statements loaded). Without it the classifier
matches the logged text against the normalized texts with literals blanked
(good for simple statements, honest about the rest: no queryid).
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from datetime import datetime

from pgradar.agent.model.plans import DeadlockReport, PlanSample, TimeoutCancel, blank_literals
from pgradar.agent.plans.walker import plan_sample

_PLAN_START = re.compile(r"duration: ([0-9.]+) ms\s+plan:\s*(.*)$", re.DOTALL)
MAX_DEADLOCKS = 20  # reports kept, the latest
_PROCESS_STATEMENT = re.compile(r"^\s*Process \d+: (.*)$")
_PROCESS_WAIT = re.compile(r"^\s*(Process \d+ waits for .*)$")
_IN_RELATION = re.compile(r'relation "((?:[^"]|"")+)"')
_DB_PREFIX = re.compile(r"\bdb=([^\s,]+)")
_USER_PREFIX = re.compile(r"\buser=([^\s,]+)")
_APP_PREFIX = re.compile(r"\bapp=([^\s,]+)")
TIMEOUT_MESSAGE = "canceling statement due to statement timeout"
MAX_TIMEOUTS = 200  # cancellations kept, the latest
_SEVERITY_FIELD = re.compile(r"\b(DETAIL|HINT|CONTEXT|STATEMENT|ERROR|LOG|WARNING|FATAL|PANIC|NOTICE):  ")


def deadlock_report(detail: str, context: str, database: str | None, seen_at: datetime) -> DeadlockReport:
    """A report from the DETAIL text (process waits and statements) and the CONTEXT text."""
    statements, waits = [], []
    for line in detail.splitlines():
        if (m := _PROCESS_STATEMENT.match(line)) is not None:
            statements.append(blank_literals(m[1])[:500])
        elif (m := _PROCESS_WAIT.match(line)) is not None:
            waits.append(m[1].strip())
    relations = tuple(dict.fromkeys(r.replace('""', '"') for r in _IN_RELATION.findall(context)))
    return DeadlockReport(database, seen_at, tuple(statements), relations, tuple(waits))


def timeout_cancel(
    statement: str, database: str | None, user: str | None, application: str | None, seen_at: datetime
) -> TimeoutCancel:
    """A cancellation with its statement's literals blanked (the log holds the values the application sent)."""
    return TimeoutCancel(database, user, application, seen_at, blank_literals(statement)[:2000])


def sample_from(message: str, database: str | None, seen_at: datetime) -> PlanSample | None:
    """The plan of one log message, or None when the message is not an auto_explain JSON plan."""
    match = _PLAN_START.search(message)
    if not match:
        return None
    try:
        doc = json.loads(match[2])
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("Plan"), dict):
        return None
    queryid = doc.get("Query Identifier")
    return plan_sample(
        doc, int(queryid) if queryid else None, database, str(doc.get("Query Text", "")), float(match[1]), seen_at
    )


class LogTail:
    """Reads what a log file got since the last call; keeps the latest plan per statement."""

    def __init__(
        self,
        path: str,
        max_plans: int = 500,
        chunk_bytes: int = 8 << 20,
        max_message_bytes: int = 1 << 20,
        backlog_bytes: int = 4 << 20,
    ) -> None:
        self.path = path
        self.max_plans = max_plans
        self.chunk_bytes = chunk_bytes
        self.max_message_bytes = max_message_bytes
        self.backlog_bytes = backlog_bytes
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""  # a last line without its newline yet
        self._skip_to_line = False  # started mid-line: drop up to the next newline
        self._message: list[str] = []  # the stderr message being assembled
        self._message_bytes = 0
        self._plans: OrderedDict[str, PlanSample] = OrderedDict()
        self._deadlock: list[str] = []  # the stderr deadlock report being assembled
        self._deadlocks: list[DeadlockReport] = []
        self._timeout: list[str] = []  # the stderr cancellation being assembled (ERROR, STATEMENT lines)
        self._timeouts: list[TimeoutCancel] = []

    @property
    def deadlocks(self) -> tuple[DeadlockReport, ...]:
        return tuple(self._deadlocks)

    @property
    def timeouts(self) -> tuple[TimeoutCancel, ...]:
        return tuple(self._timeouts)

    @property
    def plans(self) -> tuple[PlanSample, ...]:
        return tuple(self._plans.values())

    def read(self, now: datetime) -> int:
        """Read new lines (at most ``chunk_bytes``); the number of bytes read. OSError if unreadable."""
        st = os.stat(self.path)
        if self._inode is None:
            self._inode, self._offset = st.st_ino, max(0, st.st_size - self.backlog_bytes)
            self._skip_to_line = self._offset > 0
        elif st.st_ino != self._inode or st.st_size < self._offset:  # rotated or truncated
            self._finish(now)
            self._inode, self._offset, self._partial, self._skip_to_line = st.st_ino, 0, b"", False
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(self.chunk_bytes)
        self._offset += len(data)
        if self._skip_to_line:
            newline = data.find(b"\n")
            if newline < 0:
                return len(data)
            data, self._skip_to_line = data[newline + 1 :], False
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) > self.max_message_bytes:
            self._partial = b""
            self._skip_to_line = True
        for raw in lines:
            self._line(raw.decode("utf-8", "replace"), now)
        if not self._partial:
            # The server writes a message in one write(): at the end of the
            # file, the message being assembled is complete.
            self._finish(now)
            self._finish_deadlock(now)
            self._finish_timeout(now)
        return len(data)

    def _line(self, line: str, now: datetime) -> None:
        if line.startswith("{"):
            self._finish(now)
            try:
                entry = json.loads(line)
            except ValueError:
                return
            if isinstance(entry, dict) and isinstance(entry.get("message"), str):
                if entry["message"] == TIMEOUT_MESSAGE:
                    self._keep_timeout(
                        timeout_cancel(
                            str(entry.get("statement", "")),
                            entry.get("dbname"),
                            entry.get("user"),
                            entry.get("application_name"),
                            now,
                        )
                    )
                    return
                if entry.get("state_code") == "40P01" or entry["message"] == "deadlock detected":
                    self._keep_deadlock(
                        deadlock_report(
                            str(entry.get("detail", "")), str(entry.get("context", "")), entry.get("dbname"), now
                        )
                    )
                    return
                self._keep(sample_from(entry["message"], entry.get("dbname"), now))
            return
        if self._deadlock and (line.startswith("\t") or _continues_deadlock(line)):
            if len(self._deadlock) < 200:
                self._deadlock.append(line)
            return
        if self._deadlock:
            self._finish_deadlock(now)
        if self._timeout and (line.startswith("\t") or _continues_deadlock(line)):
            if len(self._timeout) < 200:
                self._timeout.append(line)
            return
        if self._timeout:
            self._finish_timeout(now)
        if f"ERROR:  {TIMEOUT_MESSAGE}" in line:
            self._finish(now)
            self._timeout = [line]
            return
        if "ERROR:  deadlock detected" in line:
            self._finish(now)
            self._deadlock = [line]
            return
        if line.startswith("\t"):
            if self._message and self._message_bytes + len(line) <= self.max_message_bytes:
                self._message.append(line[1:])
                self._message_bytes += len(line)
            else:
                self._message = []
            return
        self._finish(now)
        if "plan:" in line:
            self._message, self._message_bytes = [line], len(line)

    def _finish_deadlock(self, now: datetime) -> None:
        lines, self._deadlock = self._deadlock, []
        if not lines:
            return
        detail: list[str] = []
        context: list[str] = []
        field: str | None = None
        for line in lines:
            m = _SEVERITY_FIELD.search(line) if not line.startswith("\t") else None
            if m is not None:
                field = m[1]
                line = line[m.end() :]
            (detail if field == "DETAIL" else context if field == "CONTEXT" else []).append(line)
        db = _DB_PREFIX.search(lines[0])
        self._keep_deadlock(deadlock_report("\n".join(detail), "\n".join(context), db[1] if db else None, now))

    def _finish_timeout(self, now: datetime) -> None:
        lines, self._timeout = self._timeout, []
        if not lines:
            return
        statement: list[str] = []
        field: str | None = None
        for line in lines[1:]:
            m = _SEVERITY_FIELD.search(line) if not line.startswith("\t") else None
            if m is not None:
                field = m[1]
                line = line[m.end() :]
            if field == "STATEMENT":
                statement.append(line)
        head = lines[0]
        db, user, app = (p.search(head) for p in (_DB_PREFIX, _USER_PREFIX, _APP_PREFIX))
        self._keep_timeout(
            timeout_cancel(
                "\n".join(statement), db[1] if db else None, user[1] if user else None, app[1] if app else None, now
            )
        )

    def _keep_timeout(self, cancel: TimeoutCancel) -> None:
        self._timeouts.append(cancel)
        del self._timeouts[:-MAX_TIMEOUTS]

    def _keep_deadlock(self, report: DeadlockReport) -> None:
        self._deadlocks.append(report)
        del self._deadlocks[:-MAX_DEADLOCKS]

    def _finish(self, now: datetime) -> None:
        if self._message:
            self._keep(sample_from("\n".join(self._message), None, now))
        self._message, self._message_bytes = [], 0

    def _keep(self, sample: PlanSample | None) -> None:
        if sample is None:
            return
        self._plans.pop(sample.key, None)
        self._plans[sample.key] = sample
        while len(self._plans) > self.max_plans:
            self._plans.popitem(last=False)


def _continues_deadlock(line: str) -> bool:
    """A DETAIL, HINT, CONTEXT or STATEMENT line of the report being assembled (same prefix, next field)."""
    m = _SEVERITY_FIELD.search(line)
    return m is not None and m[1] in ("DETAIL", "HINT", "CONTEXT", "STATEMENT")
