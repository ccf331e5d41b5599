"""A job that runs every second on a thread of its own: the load sampler.

APScheduler's bookkeeping for one run (the next fire time, the hand-off to
an executor thread, the events to its listeners) costs about 0.34 ms of CPU,
as much as a load sample itself: at one sample a second, a fifth of a
quiet agent's CPU. A ticker keeps what the scheduler gave the sampler (a
fixed grid of due times from its first run, never two runs at once, a late
run once rather than once per missed slot, the missed slots counted) for a
wait on an event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("pgradar.agent")


def next_due(due: float, now: float, interval: float) -> tuple[float, int]:
    """(the next due time after ``now`` on the grid of ``due``, the due times that passed before it).

    A run that started at ``due`` and ended at ``now`` skips the slots that
    fell while it ran: the next run keeps the grid, as a coalesced job does.
    """
    missed = max(0, int((now - due) // interval))
    return due + (missed + 1) * interval, missed


class Ticker:
    """``run()`` at ``first`` and every ``interval`` seconds after it, on a thread of its own, until ``stop()``.

    ``skipped(n)`` hears of the ``n`` due times a run overran; ``ran()`` of
    every run, as the scheduler's listeners hear of its jobs. A run that
    raises is logged and the ticker goes on.
    """

    def __init__(
        self,
        name: str,
        run: Callable[[], None],
        first: float,
        interval: float,
        skipped: Callable[[int], None],
        ran: Callable[[], None] = lambda: None,
    ) -> None:
        self.name, self.first, self.interval = name, first, interval
        self._run, self._skipped, self._ran = run, skipped, ran
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"pgradar-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the run under way, if any, ends."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        due = self.first
        while not self._stopping.wait(max(0.0, due - time.time())):
            try:
                self._run()
            except Exception:  # a bug must not end the sampling; the run's own errors are in its status
                log.exception("%s failed unexpectedly", self.name)
            self._ran()
            due, missed = next_due(due, time.time(), self.interval)
            if missed:
                self._skipped(missed)
