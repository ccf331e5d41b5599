"""Logging a job's condition when it changes, not on every run.

A collector that fails every 15 s, or a custom query backing off, would
otherwise repeat its line until someone fixes it; one line when the
condition changes (and one when it recovers) is what an on-call engineer
reads. The collectors, the classifiers and the custom queries of a target
all log through one of these.
"""

from __future__ import annotations

import logging


class ChangeLog:
    """The last condition logged per key (a collector, a classifier, a custom query) of one target."""

    def __init__(self, log: logging.Logger, target: str) -> None:
        self._log = log
        self._target = target
        self._seen: dict[str, str] = {}

    def note(self, key: str, message: str, level: int = logging.INFO, same_as: str | None = None) -> None:
        """Log ``message`` when it differs from the last one for ``key``; "ok" after a problem logs a recovery.

        ``same_as`` is what counts as the same condition when the message
        itself changes from run to run (a backoff's "next try in N run(s)").
        """
        seen = same_as or message
        previous = self._seen.get(key)
        self._seen[key] = seen
        if seen == previous or (message == "ok" and previous is None):
            return
        if message == "ok":
            self._log.info("target %s: %s recovered", self._target, key)
        else:
            self._log.log(level, "target %s: %s", self._target, message)
