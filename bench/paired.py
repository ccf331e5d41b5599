"""Agent CPU of two revisions of pgradar, side by side on one cluster: a comparison the machine's noise cannot skew.

    python bench/paired.py --before 116248a                 # against HEAD, full catalog, 300 s
    python bench/paired.py --before 116248a --after main --size small --window 120

Single runs of ``run.py`` on a shared 2-CPU virtual machine move by tens of
percent from one run to the next (the peer's own figures too), which hides a
change of ten. Here both revisions run at once, against the same cluster and
the same background workload, each scraped every 15 s: what slows the machine
slows both. Each revision is checked out in a temporary git worktree and runs
with this interpreter (its dependencies must match). Prints each agent's CPU
seconds at 25 s (imports and the first pass), over the window, and from 60 s
on, with its peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402
import run  # noqa: E402


def worktree(rev: str, root: Path) -> Path:
    """``rev`` checked out under ``root``, with a ``pgradar`` package that points into it."""
    tree = root / rev.replace("/", "_")
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), rev], cwd=HERE.parent, check=True, capture_output=True
    )
    package = tree / "_import" / "pgradar"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for part in ("agent", "commands", "exporters", "dashboards", "alerts"):
        (package / part).symlink_to(tree / part)
    return tree


def launch(tree: Path, dsn: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")}
    env["PYTHONPATH"] = str(tree / "_import")
    cmd = [
        sys.executable,
        "-m",
        "pgradar.commands.cli",
        "run",
        "--dsn",
        f"bench={dsn}",
        "--listen",
        f"127.0.0.1:{port}",
    ]
    return subprocess.Popen(cmd, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def scrape_every(port: int, seconds: float, stop: threading.Event) -> None:
    while not stop.wait(seconds):
        with contextlib.suppress(OSError):  # a scrape that fails is retried at the next tick
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/paired.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="a git revision")
    parser.add_argument("--after", default="HEAD", help="a git revision (default HEAD)")
    parser.add_argument("--size", choices=sorted(catalog.SIZES), default="full")
    parser.add_argument("--window", type=float, default=300.0)
    args = parser.parse_args(argv)

    from pgradar.commands.embedded import Sandbox, free_port

    size = catalog.SIZES[args.size]
    root = Path(tempfile.mkdtemp(prefix="pgradar-paired-"))
    sandbox = Sandbox()
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    try:
        trees = {"before": worktree(args.before, root), "after": worktree(args.after, root)}
        workload, dsn = run.agent_cluster(sandbox, size)
        agents = {}
        for name, tree in trees.items():
            port = free_port()
            agents[name] = launch(tree, dsn, port, root / f"{name}.log")
            procs.append(agents[name])
            threading.Thread(target=scrape_every, args=(port, 15.0, stop), daemon=True).start()
        run.say(f"{args.before} and {args.after} launched together; window {args.window:.0f}s")
        started = time.monotonic()
        marks: dict[str, dict[float, float]] = {name: {} for name in agents}
        for at in (25.0, 60.0, args.window):
            time.sleep(max(0.0, started + at - time.monotonic()))
            for name, proc in agents.items():
                if proc.poll() is not None:
                    raise SystemExit(f"bench/paired.py: {name} exited:\n{run.tail(root / f'{name}.log')}")
                marks[name][at] = run.cpu_seconds(proc.pid)
        rss = {name: run.peak_rss_bytes(proc.pid) or 0 for name, proc in agents.items()}
        workload.stop()
    finally:
        stop.set()
        for proc in procs:
            run.stop_process(proc)
        sandbox.close()
        for tree in root.glob("*"):
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=HERE.parent, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    w = args.window
    print(
        f"\n## paired, {args.size} catalog, window {w:.0f}s, scrape every 15s; load average now "
        f"{os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)\n"
    )
    print("| revision | CPU by 25 s | CPU over the window | per minute | from 60 s on, per minute | peak RSS |")
    print("|---|---|---|---|---|---|")
    for name, rev in (("before", args.before), ("after", args.after)):
        m = marks[name]
        steady = (m[w] - m[60.0]) / (w - 60.0) * 60
        print(
            f"| {rev} | {m[25.0]:.2f} s | {m[w]:.2f} s | {m[w] / w * 60:.3f} s | {steady:.3f} s "
            f"| {rss[name] / 2**20:.1f} MiB |"
        )
    b, a = marks["before"], marks["after"]
    print(
        f"\nafter/before: {a[w] / b[w]:.0%} over the window, "
        f"{(a[w] - a[60.0]) / (b[w] - b[60.0]):.0%} from 60 s on, {a[25.0] / b[25.0]:.0%} by 25 s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
