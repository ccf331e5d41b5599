"""`pgradar demo` as a user runs it (a child process), its status page in a real Chromium, and Ctrl-C.

One demo serves the whole module: it starts once (initdb, load, basebackup,
agent), the tests look at it, and the last test stops it with SIGINT and
checks that nothing it started is left: no server, no folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from browser import Chromium
from support import sample, scrape, wait_for

from pgradar.commands.demo import PLANTED, Planted, process_gone
from pgradar.commands.embedded import free_port

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
START_TIMEOUT_S = 120
PLANTED_WITHIN_S = 240  # "within a few minutes" (README)


@dataclass
class RunningDemo:
    proc: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    started_s: float = 0.0

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def folder(self) -> Path | None:
        found = re.search(r"^demo: folder (\S+)$", self.output, re.M)
        return Path(found.group(1)) if found else None

    @property
    def server_pids(self) -> dict[str, int]:
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"^demo: server (\w+) pid (\d+) ", self.output, re.M)}


def _alive(pid: int) -> bool:
    return not process_gone(pid)  # a zombie waiting for init to reap it is not running


def processes_under(folder: Path) -> list[str]:
    """Processes whose command line names the folder (a server whose data directory was in it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def _stop(demo: RunningDemo, sig: int = signal.SIGINT, timeout: float = 60) -> int:
    demo.proc.send_signal(sig)
    try:
        return demo.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        demo.proc.kill()
        demo.proc.wait(10)
        raise AssertionError(f"the demo did not stop within {timeout:.0f}s of {signal.Signals(sig).name}") from None


@pytest.fixture(scope="module")
def demo() -> Iterator[RunningDemo]:
    port = free_port()
    started = time.monotonic()
    # A long pause: the standby stays behind for the whole module.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgradar.commands.cli",
            "demo",
            "--listen",
            f"127.0.0.1:{port}",
            "--replay-pause",
            "900",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")},
    )
    running = RunningDemo(proc, port)
    stdout = proc.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            running.lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(
            lambda: "pgradar demo is running." in running.output or proc.poll() is not None,
            START_TIMEOUT_S,
            step=0.2,
            what="the demo to start",
        )
        assert proc.poll() is None, f"the demo exited with {proc.returncode}:\n{running.output}"
        running.started_s = time.monotonic() - started
        print(f"\npgradar demo started in {running.started_s:.1f}s")
        yield running
    finally:
        if proc.poll() is None:
            _stop(running)
        reader.join(10)
        stdout.close()
        for pid in running.server_pids.values():  # a failed test must not leave servers behind
            if _alive(pid):
                os.kill(pid, signal.SIGQUIT)
        if running.folder is not None and running.folder.exists():
            time.sleep(1)
            shutil.rmtree(running.folder, ignore_errors=True)
        print(running.output)


def _ready(port: int) -> bool:
    try:
        return scrape(port, "/readyz", timeout=5).startswith("ready")
    except OSError:
        return False


def _statements_on_page(port: int) -> str | None:
    page = scrape(port, "/")
    return page if page.count("<polyline") >= 2 else None


def test_starts_quickly_and_says_where_to_look(demo: RunningDemo) -> None:
    assert demo.started_s < 90, f"the demo took {demo.started_s:.0f}s to start"
    out = demo.output
    for shown in (f"http://127.0.0.1:{demo.port}/", f"http://127.0.0.1:{demo.port}/metrics", "pgradar check --dsn"):
        assert shown in out
    assert re.search(r"orders: 200,000 / 200,000 \(100%\)", out)
    assert set(demo.server_pids) == {"primary", "standby"}
    assert demo.folder is not None and demo.folder.is_dir()
    assert "Traceback" not in out


def test_metrics_and_problems_on_both_servers(demo: RunningDemo) -> None:
    wait_for(lambda: _ready(demo.port), 60, what="readiness")
    text = scrape(demo.port)
    assert sample(text, "pgradar_up", target="primary") == 1.0
    assert sample(text, "pgradar_up", target="standby") == 1.0
    assert sample(text, "pgradar_server_info", target="standby", role="standby") == 1.0
    assert sample(text, "pgradar_server_in_recovery", target="standby") == 1.0
    wait_for(
        lambda: (
            sample(scrape(demo.port), "pgradar_statement_calls_total", target="primary", database="shop") is not None
        ),
        60,
        what="per-statement series of the shop",
    )
    doc = json.loads(scrape(demo.port, "/problems"))
    assert [(t["name"], t["role"], t["ok"]) for t in doc["targets"]] == [
        ("primary", "primary", True),
        ("standby", "standby", True),
    ]


def test_check_command_it_prints_works(demo: RunningDemo) -> None:
    """Pasted into a shell whose PATH has no venv (as after `make demo`), exactly as printed."""
    found = re.search(r"^  check\s+(\S*pgradar check .*)$", demo.output, re.M)
    assert found, demo.output
    assert found.group(1).startswith("/"), "a venv is rarely on PATH: the command names pgradar by absolute path"
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    proc = subprocess.run(
        found.group(1) + " --format json", shell=True, capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert [t["name"] for t in json.loads(proc.stdout)["targets"]] == ["primary", "standby"]


def _planted_missing(port: int) -> list[Planted]:
    problems = json.loads(scrape(port, "/problems"))["problems"]
    return [
        p
        for p in PLANTED
        if not any(x["kind"] == p.kind and x["target"] == p.target and x[p.field] == p.value for x in problems)
    ]


def test_planted_problems_appear_within_minutes(demo: RunningDemo) -> None:
    started = time.monotonic()
    deadline = started + PLANTED_WITHIN_S
    while (missing := _planted_missing(demo.port)) and time.monotonic() < deadline:
        time.sleep(2)
    assert not missing, (
        f"not reported after {PLANTED_WITHIN_S}s: "
        + ", ".join(f"{p.kind} on {p.target} ({p.field}={p.value})" for p in missing)
        + "\n"
        + scrape(demo.port, "/problems")
    )
    print(f"\nevery planted problem reported {time.monotonic() - started:.0f}s after the checks began")


def test_status_page_in_chromium(demo: RunningDemo) -> None:
    wait_for(lambda: _statements_on_page(demo.port), 90, what="statements with two intervals on the status page")
    started = time.monotonic()
    scrape(demo.port, "/")
    print(f"\nstatus page served in {1000 * (time.monotonic() - started):.0f} ms")
    with Chromium() as browser:
        browser.load(f"http://127.0.0.1:{demo.port}/")
        assert browser.problems() == []
        facts = browser.evaluate("""(() => {
            const all = s => [...document.querySelectorAll(s)];
            const spark = document.querySelector('tr.statement svg.spark');
            return {
              title: document.title,
              targets: all('tr.target').map(r => [r.dataset.target, r.innerText]),
              statements: all('tr.statement').map(r => r.innerText),
              polylines: all('tr.statement svg.spark polyline').length,
              sparkWidth: spark ? spark.getBoundingClientRect().width : 0,
              problems: all('.problem').map(p => ({...p.dataset, text: p.innerText})),
              scripts: all('script').length,
              overflowX: document.documentElement.scrollWidth > window.innerWidth,
            };
        })()""")
        shot = browser.screenshot(ARTIFACTS / "status-page.png")
    print(f"screenshot: {shot}")
    assert facts["title"] == "pgradar status"
    assert [t[0] for t in facts["targets"]] == ["primary", "standby"]
    assert all("up" in t[1] and "18.6" in t[1] for t in facts["targets"]), facts["targets"]
    assert any("WHERE customer_id = $1" in s for s in facts["statements"]), facts["statements"]
    assert facts["polylines"] >= 2 and facts["sparkWidth"] > 50
    assert facts["scripts"] == 0 and not facts["overflowX"]
    assert shot.stat().st_size > 10_000
    for planted in PLANTED:  # each with its severity, summary and fix shown
        shown = [
            p
            for p in facts["problems"]
            if p["kind"] == planted.kind and p["target"] == planted.target and p.get(planted.field) == planted.value
        ]
        assert shown, f"{planted.kind} ({planted.field}={planted.value}) is not on the page: {facts['problems']}"
        assert shown[0]["severity"] in shown[0]["text"] and len(shown[0]["text"].splitlines()) >= 3


def test_page_reads_like_a_diagnosis_without_false_alarms(demo: RunningDemo) -> None:
    """No agent statement among the top statements, no stale_stats from a parallel plan, problems by severity."""
    wait_for(lambda: _statements_on_page(demo.port), 90, what="statements with two intervals on the status page")
    deadline = time.monotonic() + PLANTED_WITHIN_S
    while _planted_missing(demo.port) and time.monotonic() < deadline:
        time.sleep(2)
    html = scrape(demo.port, "/")
    top = html[html.index("<h2>Top statements") :]
    statements = re.findall(r'<tr class="statement" data-queryid="(-?\d+)"', top)
    own = [
        marker
        for marker in (
            "/* pgradar */",
            "pg_stat_statements(",
            "pg_stat_user_tables",
            "pg_replication_slots",
            "pg_settings",
            "pg_class",
        )
        if marker in top
    ]
    print(f"\ntop statements on the page: {len(statements)}, of them the agent's own: {len(own)}")
    assert statements and own == [], own
    problems = json.loads(scrape(demo.port, "/problems"))["problems"]
    ranks = [("critical", "warning", "info").index(p["severity"]) for p in problems]
    assert ranks == sorted(ranks)
    stale = [
        (p["target"], p["relation"], p["summary"])
        for p in problems
        if p["kind"] == "stale_stats" and p["relation"] == "orders"
    ]
    assert stale == [], stale  # orders never changed after its ANALYZE; its count(*) plans are parallel
    assert "=<code>" not in html and "[[&quot;" not in html  # evidence in units, not JSON


def test_ctrl_c_stops_everything_and_removes_the_folder(demo: RunningDemo) -> None:
    folder, pids = demo.folder, demo.server_pids
    assert folder is not None and pids
    assert all(_alive(pid) for pid in pids.values())
    started = time.monotonic()
    assert _stop(demo) == 0, demo.output
    print(f"\nthe demo stopped in {time.monotonic() - started:.1f}s")
    assert [p for p in pids.values() if _alive(p)] == []
    assert processes_under(folder) == []
    assert not folder.exists()
    assert "Traceback" not in demo.output


def test_busy_port_fails_at_once_and_starts_nothing() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "pgradar.commands.cli", "demo", "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"pgradar: error: demo: --listen 127.0.0.1:{port}: cannot listen: Address already in use"
    )
    assert "demo: folder" not in proc.stdout
