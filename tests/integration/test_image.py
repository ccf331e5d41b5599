"""The Dockerfile's install steps, run for real in a clean folder and a fresh venv.

No container engine is available here, so the test does what the build stage
does: it copies exactly what the build stage's COPY lines copy into an empty
folder, runs the build stage's RUN line there (with the image paths mapped into
a temporary folder), and then runs the final stage's ENTRYPOINT from the
resulting environment. A file the Dockerfile forgets to copy, a broken wheel
or a missing package-data file fails here, not at `docker build` time. Then it
runs what a user of the image runs, from that environment, against a real
server: ``pgradar check --format json``, ``pgradar run`` (``/``, ``/metrics``,
``/problems``) and ``pgradar explain``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from shipped import FOLDERS, installed_files, source_files
from support import (
    HEAVY,
    MONITOR_PASSWORD,
    MONITOR_ROLE,
    answers,
    installation,
    monitor_dsn,
    prepare,
    sample,
    scrape,
    superuser,
    wait_for,
)

from pgradar.commands.embedded import Cluster, Installation, Sandbox, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Dockerfile instructions by stage (continuation lines joined, comments dropped)."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            logical.append(current)
            current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in logical:
        op, _, rest = instruction.partition(" ")
        op = op.upper()
        if op == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key] = default
        elif op == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            stages.append(Stage(base, words[2] if len(words) == 3 and words[1].upper() == "AS" else None))
        else:
            stages[-1].instructions.append((op, rest))
    return args, stages


def test_dockerfile_shape() -> None:
    _, stages = parse(DOCKERFILE.read_text())
    assert len(stages) == 2, "multi-stage: a build stage and a runtime stage"
    build, final = stages
    assert build.base == final.base and "slim" in final.base, "same slim Python base in both stages"
    # the runtime stage gets the environment from the build stage, never builds anything itself
    assert any(c.startswith(f"--from={build.name} ") for c in final.all("COPY"))
    assert not [r for r in final.all("RUN") if re.search(r"pip|apt-get|gcc|make", r)]
    user = final.all("USER")[-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"numeric non-root USER, got {user!r}"
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert final.all("EXPOSE") == ["9188"]
    assert final.all("ENTRYPOINT") == ['["pgradar", "run"]']


def test_dockerignore_admits_everything_the_build_copies() -> None:
    _, stages = parse(DOCKERFILE.read_text())
    admitted = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    for copy in stages[0].all("COPY"):
        *sources, _ = shlex.split(copy)
        for source in sources:
            assert source.rstrip("/") in admitted, f".dockerignore leaves out {source}, which the build copies"
            assert (ROOT / source).exists(), source


@dataclass
class Image:
    """The environment the image's build stage produced, and the output of its RUN line."""

    venv: Path
    env: dict[str, str]
    stdout: str

    def pgradar(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "pgradar"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    tmp_path = tmp_path_factory.mktemp("image")
    _, (build, final) = parse(DOCKERFILE.read_text())
    workdir = build.all("WORKDIR")[-1]
    context = tmp_path / "src"
    context.mkdir()
    for copy in build.all("COPY"):
        *sources, dest = shlex.split(copy)
        target = context / os.path.relpath(os.path.join(workdir, dest), workdir)
        for source in sources:  # Docker's rules: a folder's contents go into dest; a file into dest/ or as dest
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                path = target / origin.name if dest.endswith("/") else target
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, path)
    (run,) = build.all("RUN")
    (venv_copy,) = [c for c in final.all("COPY") if c.startswith(f"--from={build.name} ")]
    venv_in_image = venv_copy.split()[-1]
    venv = tmp_path / "venv"
    command = run.replace(venv_in_image, str(venv)).replace(workdir, str(context))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "PGRADAR_"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if "venv" not in p)
    done = subprocess.run(["sh", "-c", command], cwd=context, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the runtime stage's environment: its PATH first, nothing written at run time
    return Image(
        venv, {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", "PYTHONDONTWRITEBYTECODE": "1"}, done.stdout
    )


def test_build_stage_installs_a_working_agent(image: Image) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"pgradar {version}" in image.stdout
    # what the runtime stage ends up with: no pip, no bytecode caches, the entrypoint works
    assert not (image.venv / "bin" / "pip").exists()
    assert not list(image.venv.rglob("__pycache__"))
    helped = image.pgradar("run", "--help", timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "--listen" in helped.stdout
    assert not list(image.venv.rglob("__pycache__")), "the agent wrote bytecode at run time"


def test_the_image_holds_every_module_and_data_file(image: Image) -> None:
    """The wheel built from the image's context against the source folders: nothing left out, nothing extra."""
    (site,) = image.venv.glob("lib/python*/site-packages")
    installed = set().union(*(installed_files(site / "pgradar" / folder) for folder in FOLDERS))
    expected = source_files()
    assert sorted(expected - installed) == [], "left out of the wheel"
    assert sorted(installed - expected) == [], "in the wheel but not in the source tree"
    assert not (site / "agent").exists() and not (site / "exporters").exists(), "generic top-level names installed"


@pytest.fixture(scope="module")
def server(installations: dict[int, Installation], sandbox: Sandbox) -> Iterator[Cluster]:
    """The newest server, with an app table the planner reads sequentially (for explain)."""
    cluster = prepare(sandbox.cluster(installation(installations, max(HEAVY)), "image"))
    with superuser(cluster, "app") as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total numeric)")
        conn.execute("INSERT INTO orders SELECT g, g % 5000, g FROM generate_series(1, 50000) g")
        conn.execute("ANALYZE orders")
        conn.execute(f"GRANT SELECT ON orders TO {MONITOR_ROLE}")
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)


def test_the_image_checks_runs_and_explains_against_a_real_server(image: Image, server: Cluster) -> None:
    dsn = f"main={monitor_dsn(server)}"
    checked = image.pgradar("check", "--dsn", dsn, "--format", "json", "--fail-on", "never")
    assert checked.returncode == 0, checked.stderr
    doc = json.loads(checked.stdout)
    assert [(t["name"], t["ok"], t["disabled"]) for t in doc["targets"]] == [("main", True, [])]

    explained = image.pgradar(
        "explain",
        "--dsn",
        monitor_dsn(server, "app"),
        "--format",
        "json",
        "--query",
        "SELECT * FROM orders WHERE customer_id = $1",
    )
    assert explained.returncode == 0, explained.stderr
    plan = json.loads(explained.stdout)
    assert [s["relation"] for s in plan["plan"]["seq_scans"]] == ["orders"]
    assert any("customer_id" in a["definition"] for a in plan["advice"]), plan["advice"]

    port = free_port()
    agent = subprocess.Popen(
        [str(image.venv / "bin" / "pgradar"), "run", "--dsn", dsn, "--listen", f"127.0.0.1:{port}"],
        env=image.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: answers(port, "/readyz") and "ready" in scrape(port, "/readyz"), 60, what="readiness")
        metrics = scrape(port, "/metrics")
        assert sample(metrics, "pgradar_up", target="main") == 1.0
        problems = json.loads(scrape(port, "/problems"))
        assert problems["version"] == 1 and problems["targets"][0]["name"] == "main"
        page = scrape(port, "/")
        assert "<title>pgradar status</title>" in page and "main" in page
    finally:
        agent.send_signal(signal.SIGTERM)
        output = agent.communicate(timeout=60)[0]
    assert agent.returncode == 0, output
    assert MONITOR_PASSWORD not in output
    assert not list(image.venv.rglob("__pycache__")), "the agent wrote bytecode at run time"
