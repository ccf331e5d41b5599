"""The long-running agent: one APScheduler job per target and collector, the load sampler apart.

Jobs never overlap themselves (``max_instances=1``) and a late job runs once,
not once per missed slot (``coalesce``). Each job's first run is spread
over its interval (at most ``spread_window``: 10 s for a few targets, up to
40 s for a fleet), at a phase fixed by the
target's and collector's names, and later runs keep that phase: started
together, the jobs of every target hit the databases (and the agent's CPU,
and the worker threads) in the same second, and stayed in step at every
multiple of their intervals (docs/fleet.md). Each job records
how late it started, so a fleet that is too big for one process shows it.
The load sampler, due every second, runs on a ``Ticker`` of its own per
target: the scheduler's bookkeeping cost as much CPU as a sample.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from pgradar.agent.model.observation import with_peers
from pgradar.agent.runtime.custom_runner import CustomRunner
from pgradar.agent.runtime.observation import observe
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.agent.runtime.ticker import Ticker
from pgradar.agent.settings.config import Config

log = logging.getLogger("pgradar.agent")

START_SPREAD_S = 40.0  # every first run within this: the first complete pass stays under 60 s
SPREAD_MIN_S = 10.0  # one target: its slow collectors no longer hit the database in the same second
SPREAD_PER_TARGET_S = 0.5  # a fleet: about 2 targets' jobs start per second at 80 targets and more
MIN_WORKERS, WORKERS_PER_TARGET, MAX_WORKERS = 4, 2, 256
LOAD = "load"  # the load sampler: a Ticker per target, left out of run_once
ON_TIME_S = 1.0  # a job that starts later than this after it was due counts as late


def phase(target: str, job: str) -> float:
    """A stable fraction in [0, 1) for one target's job: the same on every start and every replica."""
    return zlib.crc32(f"{target}/{job}".encode()) / 2**32


def spread_window(targets: int) -> float:
    """Seconds over which the first runs start: readiness stays quick for a sidecar, a fleet starts smoothly."""
    return min(START_SPREAD_S, max(SPREAD_MIN_S, SPREAD_PER_TARGET_S * targets))


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return lambda: trim(0)


MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Hand the C heap that was freed back to the system.

    glibc keeps freed memory for reuse: the rows of a poll, a /metrics body
    of tens of MiB, each worker thread's arena; on a large catalog the
    process keeps far more than it uses. The call releases the GIL and
    takes milliseconds.
    """
    if MALLOC_TRIM is not None:
        MALLOC_TRIM()


def settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off what the agent imported: it walked it at every full collection.

    ``gc.freeze`` moves what exists now, which never becomes garbage, out of
    every later collection. Called once before the first poll, after a
    collection, so no garbage is frozen. The thresholds stay CPython's: every
    sqlglot parse leaves cyclic garbage, which rarer collections let pile up.
    Full collections ten times rarer saved a single target a tenth of its CPU,
    but 100 targets in one process then paused long enough to skip load
    samples (bench/HISTORY.md, round nine).
    """
    gc.collect()
    gc.freeze()


def worker_threads(targets: int) -> int:
    """Threads for the scheduled jobs: a run waits on its database most of the time, not on the CPU.

    A job can only start on time if a thread is free when it is due, and
    each target keeps about one run under way, more while one of its
    databases is slow (docs/fleet.md). An idle thread costs a stack that is
    mostly never touched.
    """
    return max(MIN_WORKERS, min(MAX_WORKERS, WORKERS_PER_TARGET * targets))


def first_run_offset(target: str, job: str, interval: float, window: float = START_SPREAD_S) -> float:
    """Seconds after start of a job's first run, within its interval and the spread window."""
    return phase(target, job) * min(interval, window)


class Agent:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = AgentState()
        self.runtimes: dict[str, TargetRunner] = {}
        for target in config.owned(config.targets):
            state = TargetState(target.name, keep=config.snapshots_kept, cpus=target.cpus)
            state.load.totals.top = config.top_load_statements
            self.state.targets[target.name] = state
            self.runtimes[target.name] = TargetRunner(target, config, state)
        for target in config.owned(config.pgbouncers):
            state = TargetState(target.name, keep=config.snapshots_kept, kind="pgbouncer")
            self.state.targets[target.name] = state
            self.runtimes[target.name] = TargetRunner(target, config, state)
        # Custom SQL collectors: their own sessions and status, one job per target and query.
        self.custom: dict[str, CustomRunner] = (
            {t.name: CustomRunner(t, config, self.state.targets[t.name]) for t in config.owned(config.targets)}
            if config.custom_queries
            else {}
        )
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(worker_threads(len(self.runtimes)))},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            timezone=UTC,
        )
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        # The load samplers have threads of their own: a queue of slow polls never delays a sample.
        self.samplers: list[Ticker] = []
        self._changed: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every run of a job or sample: the state it reads may have changed."""
        self._changed.append(listener)
        self.scheduler.add_listener(lambda _event: listener(), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _ran(self) -> None:
        for listener in self._changed:
            listener()

    def start(self) -> None:
        # Before ``now``: a job due within the collection's time would otherwise be past its first
        # run when the scheduler starts, and the interval trigger would skip to the next one.
        settle_garbage_collector()
        self.state.started_at = datetime.now(UTC)
        now = datetime.now(UTC)
        window = spread_window(len(self.runtimes))
        for name, runtime in self.runtimes.items():
            for collector in runtime.collector_names:
                interval = self.config.interval(collector)
                first = now + timedelta(seconds=first_run_offset(name, collector, interval, window))
                if collector == LOAD:
                    self.samplers.append(self._sampler(runtime, first.timestamp(), interval))
                    continue
                # start_date anchors every later run on the first one (next_run_time alone does not)
                self.scheduler.add_job(
                    self._run,
                    "interval",
                    args=[runtime, collector, first.timestamp(), interval],
                    seconds=interval,
                    start_date=first,
                    id=f"{name}/{collector}",
                    name=f"{collector} on {name}",
                )
        for name, runner in self.custom.items():
            for query in runner.queries():
                self.scheduler.add_job(
                    runner.run,
                    "interval",
                    args=[query.name],
                    seconds=query.interval_s,
                    next_run_time=now,
                    id=f"{name}/custom:{query.name}",
                    name=f"custom query {query.name} on {name}",
                )
        self.scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self.scheduler.add_job(
            self.classify,
            "interval",
            seconds=self.config.interval("classify"),
            next_run_time=now,
            id="classify",
            name="classify all targets",
        )
        self.scheduler.start()
        for sampler in self.samplers:
            sampler.start()
        shard = (
            f" (shard {self.config.shard} of {len(self.config.targets) + len(self.config.pgbouncers)})"
            if self.config.shard
            else ""
        )
        log.info("watching %d target(s)%s: %s", len(self.runtimes), shard, ", ".join(self.runtimes))

    def _run(self, runtime: TargetRunner, collector: str, first: float, interval: float) -> None:
        """A scheduled run: how late it started (against its fixed grid of due times), then the run."""
        lateness = (time.time() - first) % interval
        status = runtime.state.collector(collector)
        with runtime.state.lock:
            status.last_lateness_s = lateness
            status.late += lateness > ON_TIME_S
        runtime.run_collector(collector)

    def _sampler(self, runtime: TargetRunner, first: float, interval: float) -> Ticker:
        def skipped(missed: int) -> None:
            status = runtime.state.collector(LOAD)
            with runtime.state.lock:
                status.skipped += missed

        return Ticker(
            f"load on {runtime.target.name}",
            lambda: self._run(runtime, LOAD, first, interval),
            first,
            interval,
            skipped,
            self._ran,
        )

    def _skipped(self, event: JobEvent) -> None:
        """A run that was due while the previous one still ran, or missed altogether."""
        name, _, collector = event.job_id.partition("/")
        runtime = self.runtimes.get(name)
        if runtime is not None and collector:
            status = runtime.state.collector(collector)
            with runtime.state.lock:
                status.skipped += 1

    def run_once(self) -> None:
        """Every collector of every target once, in order, then classify (``check``, tests).

        Not the load sampler: one sample is no window (``check --sample`` samples on its own).
        """
        for runtime in self.runtimes.values():
            for collector in runtime.collector_names:
                if collector != LOAD:
                    runtime.run_collector(collector)
        for runner in self.custom.values():
            for query in runner.queries():
                runner.run(query.name, scheduled=False)
        self.classify()

    def classify(self) -> None:
        """Classify every target; each sees the others as peers (a primary and its standbys)."""
        now = datetime.now(UTC)
        observations = with_peers({name: observe(rt.state, now) for name, rt in self.runtimes.items()})
        for name, runtime in self.runtimes.items():
            runtime.classify(observations[name])
        release_freed_memory()  # every 15 s, after the pass that frees the most

    def healthy(self) -> bool:
        return bool(self.scheduler.running)

    def ready(self) -> tuple[bool, str]:
        """Ready once every collector of every target has run at least once, and been classified."""
        waiting = [
            f"{name}/{c}"
            for name, rt in self.runtimes.items()
            for c in (*rt.collector_names, "classify")
            if rt.state.collector(c).runs == 0
        ]
        if waiting:
            return False, f"first pass not finished: {', '.join(waiting[:10])}"
        return True, "ready"

    def stop(self) -> None:
        for sampler in self.samplers:
            sampler.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for runtime in self.runtimes.values():
            runtime.close()
        for runner in self.custom.values():
            runner.close()
