"""Where the agent's CPU goes, job by job: thread CPU of every collector run, classification and /metrics render.

    python bench/jobs.py --size full --window 240

Builds the catalog as ``run.py`` does, starts its background workload, and
runs one pgradar agent against it, scraped every 15 s. The agent runs in a
child process of this script that wraps four of its methods with a thread-CPU
clock: a collector's scheduled run (``Agent._run``; the first run of each
collector is counted apart, as it reads the whole catalog), a classification
(the first two apart), a /metrics render, and the encoding of each section a
render could not reuse; and each collection of the cyclic garbage
collector, by generation (its CPU also counts in the entry it interrupted).
At the end it prints, per entry, the runs, the CPU in
all and per run, and what that is per minute; the process's own CPU is the
total, the difference being imports, the HTTP server and the scheduler.

py-spy (``profile.py``) samples the whole process at a rate that leaves a few
dozen samples on a quiet agent; this counts every run of every job exactly,
and ``--profile statements`` (or ``classify``, ``render``) runs one entry
under cProfile to say where its CPU goes.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import io
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def stdlib_cprofile() -> Any:
    """cProfile, whose own ``import profile`` would find bench/profile.py first."""
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    try:
        return importlib.import_module("cProfile")
    finally:
        sys.path[:] = saved


sys.path.insert(0, str(HERE))


def agent_with_clocks(out: Path, argv: list[str], profiled: str | None = None, profile: Path | None = None) -> int:
    """Run ``pgradar`` with ``argv``, clocking its jobs; the totals go to ``out`` as JSON when it exits.

    With ``profiled`` ("classify", "render" or a collector's name), every run
    of that entry but the first ones (classify: the first two) also runs
    under cProfile (thread CPU: waits on the server cost nothing), and the
    statistics go to ``profile``.
    """
    from pgradar.agent.runtime.agent import Agent
    from pgradar.commands.cli import main
    from pgradar.exporters.http import Exposition
    from pgradar.exporters.prometheus import PartedRegistry

    spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    lock = threading.Lock()

    def count(entry: str, started: float) -> None:
        with lock:
            spent[entry][0] += 1
            spent[entry][1] += time.thread_time() - started

    run_job, classify, render, blocks = Agent._run, Agent.classify, Exposition._render, PartedRegistry._blocks
    profiler = stdlib_cprofile().Profile(time.thread_time) if profiled is not None else None  # CPU, not waits

    def timed_run(self: Agent, runtime: Any, collector: str, *args: Any) -> None:
        entry = f"first {collector}" if f"first {collector}" not in spent else f"job {collector}"
        spent.setdefault(entry, [0, 0.0])  # claimed before the run: a concurrent run of the same job is not "first"
        started = time.thread_time()
        try:
            if profiler is not None and profiled == collector and entry.startswith("job "):
                profiler.runcall(run_job, self, runtime, collector, *args)
            else:
                run_job(self, runtime, collector, *args)
        finally:
            count(entry, started)

    passes = [0]

    def timed_classify(self: Agent) -> None:
        passes[0] += 1
        entry = f"classify #{passes[0]}" if passes[0] <= 2 else "classify"
        started = time.thread_time()
        try:
            if profiler is not None and profiled == "classify" and passes[0] > 2:
                profiler.runcall(classify, self)
            else:
                classify(self)
        finally:
            count(entry, started)

    def timed_render(self: Exposition, *args: Any) -> bytes:
        started = time.thread_time()
        try:
            if profiler is not None and profiled == "render":
                return profiler.runcall(render, self, *args)
            return render(self, *args)
        finally:
            count("render (all)", started)

    def timed_blocks(self: PartedRegistry, key: tuple[Any, ...], *args: Any, **kwargs: Any) -> Any:
        encoded, started = self.encoded, time.thread_time()
        found = blocks(self, key, *args, **kwargs)
        if self.encoded != encoded:
            count(f"render: encode {key[1] if len(key) > 2 else 'custom'}", started)
        return found

    collecting = threading.local()

    def timed_gc(phase: str, info: dict[str, int]) -> None:
        """Each collection of the cyclic garbage collector, by generation (its CPU is in the entry it ran in too)."""
        if phase == "start":
            collecting.started = time.thread_time()
        elif hasattr(collecting, "started"):
            count(f"gc: {('young', 'middle', 'full')[info['generation']]} collections", collecting.started)

    gc.callbacks.append(timed_gc)
    Agent._run, Agent.classify = timed_run, timed_classify  # type: ignore[method-assign]
    Exposition._render, PartedRegistry._blocks = timed_render, timed_blocks  # type: ignore[method-assign]
    try:
        return main(argv)
    finally:
        times = os.times()
        spent["process (all)"] = [1, times.user + times.system]
        out.write_text(json.dumps(spent))
        if profiler is not None and profile is not None and profiler.getstats():
            profiler.dump_stats(profile)


def report(spent: dict[str, list[float]], seconds: float) -> str:
    """One line per entry, the most CPU first."""
    lines = [f"{'':34} {'runs':>5} {'CPU':>9} {'per run':>9} {'per minute':>11}"]
    for entry, (runs, cpu) in sorted(spent.items(), key=lambda kv: -kv[1][1]):
        per_minute = "" if entry.startswith(("first ", "classify #")) else f"{cpu / seconds * 60 * 1000:8.1f} ms"
        lines.append(f"{entry:34} {int(runs):5d} {cpu * 1000:6.0f} ms {cpu / runs * 1000:6.1f} ms {per_minute:>11}")
    return "\n".join(lines)


def profile_report(path: Path, lines: int = 30) -> str:
    """The functions with the most CPU of their own, then the most in all, from cProfile's statistics."""
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text).strip_dirs()
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/jobs.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("small", "full"), default="full")
    parser.add_argument("--window", type=float, default=240.0, help="seconds the agent runs")
    parser.add_argument(
        "--profile",
        metavar="ENTRY",
        help="also run ENTRY (classify, render or a collector's name, such as statements) under cProfile, its first"
        " runs apart, and print the functions with the most CPU (cProfile roughly doubles a run's CPU: read the"
        " shares, not the milliseconds)",
    )
    parser.add_argument("--agent-with-clocks", type=Path, help=argparse.SUPPRESS)  # the child: JSON out
    parser.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)  # the child: cProfile statistics there
    args, rest = parser.parse_known_args(argv)
    if args.agent_with_clocks is not None:
        return agent_with_clocks(args.agent_with_clocks, rest, args.profile, args.profile_to)

    import catalog
    import run

    from pgradar.commands.embedded import Sandbox, free_port

    size = catalog.SIZES[args.size]
    root = Path(tempfile.mkdtemp(prefix="pgradar-jobs-"))
    sandbox = Sandbox()
    stop = threading.Event()
    agent: subprocess.Popen[bytes] | None = None
    out = root / "spent.json"
    try:
        workload, dsn = run.agent_cluster(sandbox, size)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")}
        profile = root / "entry.pstats" if args.profile else None
        cmd = [sys.executable, __file__, "--agent-with-clocks", str(out)]
        cmd += ["--profile", args.profile, "--profile-to", str(profile)] if profile is not None else []
        cmd += ["run", "--dsn", f"bench={dsn}"]
        agent = subprocess.Popen(
            [*cmd, "--listen", f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL, stderr=(root / "log").open("w")
        )

        def scrape() -> None:
            while not stop.wait(15.0):
                with contextlib.suppress(OSError):  # the next tick scrapes again
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()

        threading.Thread(target=scrape, daemon=True).start()
        run.say(f"agent launched; window {args.window:.0f}s")
        for left in range(int(args.window), 0, -60):
            time.sleep(min(60, left))
            if agent.poll() is not None:
                raise SystemExit(f"bench/jobs.py: the agent exited:\n{run.tail(root / 'log')}")
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        workload.stop()
        spent = json.loads(out.read_text())
        profiled = profile_report(profile) if profile is not None and profile.exists() else "(no run profiled)"
    finally:
        stop.set()
        run.stop_process(agent)
        sandbox.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n## per job, {args.size} catalog, window {args.window:.0f}s, scrape every 15s, thread CPU\n")
    print(report(spent, args.window))
    if args.profile:
        print(f"\n## {args.profile} under cProfile (after its first runs)\n\n{profiled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
