"""The long-running agent: one APScheduler job per target and collector.

Jobs never overlap themselves (``max_instances=1``) and a late job runs once,
not once per missed slot (``coalesce``). All jobs start at once so the first
complete picture is there within one pass; after that each keeps its own
interval.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from pgradar.agent.bouncer import BouncerRuntime
from pgradar.agent.config import Config
from pgradar.agent.custom_collector import CustomRunner
from pgradar.agent.observation import observe, with_peers
from pgradar.agent.state import AgentState, TargetState
from pgradar.agent.target import TargetRuntime

log = logging.getLogger("pgradar.agent")


class Agent:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = AgentState()
        self.runtimes: dict[str, TargetRuntime] = {}
        for target in config.targets:
            state = TargetState(target.name, keep=config.snapshots_kept)
            self.state.targets[target.name] = state
            self.runtimes[target.name] = TargetRuntime(target, config, state)
        for target in config.pgbouncers:
            state = TargetState(target.name, keep=config.snapshots_kept, kind="pgbouncer")
            self.state.targets[target.name] = state
            self.runtimes[target.name] = BouncerRuntime(target, config, state)
        # Custom SQL collectors: their own sessions and status, one job per target and query.
        self.custom: dict[str, CustomRunner] = {
            t.name: CustomRunner(t, config, self.state.targets[t.name]) for t in config.targets
        } if config.custom_queries else {}
        workers = max(4, min(32, 2 * len(self.runtimes)))
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            timezone=UTC)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

    def start(self) -> None:
        self.state.started_at = datetime.now(UTC)
        now = datetime.now(UTC)
        for name, runtime in self.runtimes.items():
            for collector in runtime.collector_names:
                self.scheduler.add_job(runtime.run_collector, "interval", args=[collector],
                                       seconds=self.config.interval(collector), next_run_time=now,
                                       id=f"{name}/{collector}", name=f"{collector} on {name}")
        for name, runner in self.custom.items():
            for query in runner.queries():
                self.scheduler.add_job(runner.run, "interval", args=[query.name], seconds=query.interval_s,
                                       next_run_time=now, id=f"{name}/custom:{query.name}",
                                       name=f"custom query {query.name} on {name}")
        self.scheduler.add_job(self.classify, "interval", seconds=self.config.interval("classify"),
                               next_run_time=now, id="classify", name="classify all targets")
        self.scheduler.start()
        log.info("watching %d target(s): %s", len(self.runtimes), ", ".join(self.runtimes))

    def run_once(self) -> None:
        """Every collector of every target once, in order, then classify (``check``, tests)."""
        for runtime in self.runtimes.values():
            for collector in runtime.collector_names:
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

    def healthy(self) -> bool:
        return bool(self.scheduler.running)

    def ready(self) -> tuple[bool, str]:
        """Ready once every collector of every target has run at least once, and been classified."""
        waiting = [f"{name}/{c}" for name, rt in self.runtimes.items() for c in (*rt.collector_names, "classify")
                   if rt.state.collector(c).runs == 0]
        if waiting:
            return False, f"first pass not finished: {', '.join(waiting[:10])}"
        return True, "ready"

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        for runtime in self.runtimes.values():
            runtime.close()
        for runner in self.custom.values():
            runner.close()
