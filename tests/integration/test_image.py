"""The Dockerfile, built for real, and the image's entrypoint run against a real server.

Buildah (a Debian package, no daemon) builds the Dockerfile as it is, with chroot isolation and the
vfs storage driver (no overlay mounts, no user namespaces), its storage in a temporary folder that
goes afterwards. The base is made of Debian's own packages rather than pulled from a registry:
``debootstrap --variant=minbase --include=python3,python3-venv bookworm``, built once and kept in
``.cache/image/``, imported with ``buildah from scratch`` and passed as the Dockerfile's
``PYTHON_IMAGE``. The build honours ``.dockerignore``, so a file the Dockerfile forgets to copy, a
broken wheel or a missing package-data file fails the build here. Then the built image's entrypoint
runs (``buildah run``: the image's user, environment and file system) what a user of the image runs
against a real server: ``pgradar check --format json``, ``pgradar run`` (``/``, ``/metrics``,
``/problems``, and a clean stop on SIGTERM) and ``pgradar explain``.

Building needs root (debootstrap, and buildah without user namespaces), as ``make test`` in CI has.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# The first run makes the Debian root (about a minute, more on a busy machine) before the build.
pytestmark = pytest.mark.timeout(1800)
SUITE = "bookworm"
DEBOOTSTRAP = ["debootstrap", "--variant=minbase", "--include=python3,python3-venv", SUITE]
MIRROR = "http://deb.debian.org/debian"
BASE_CACHE = ROOT / ".cache" / "image" / f"debian-{SUITE}"
BASE_IMAGE = f"localhost/pgradar-test-base:{SUITE}"
IMAGE = "localhost/pgradar:test"
# What Debian's own container images carry in their configuration; a root copied into `scratch` has none.
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def stages(text: str) -> list[tuple[str, list[str]]]:
    """Each stage's FROM argument and its RUN lines (continuation lines joined, comments dropped)."""
    found: list[tuple[str, list[str]]] = []
    for instruction in re.sub(r"\\\n\s*", " ", re.sub(r"(?m)^\s*#.*\n", "", text)).splitlines():
        op, _, rest = instruction.strip().partition(" ")
        if op.upper() == "FROM":
            found.append((rest.split()[0], []))
        elif op.upper() == "RUN":
            found[-1][1].append(rest)
    return found


def test_dockerfile_shape() -> None:
    """Two stages on one base (the venv's python links into it); the runtime stage installs nothing."""
    text = DOCKERFILE.read_text()
    default = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)$", text)
    assert default and re.fullmatch(r"python:3\.\d+-slim(-\w+)?", default.group(1)), "the default base: python slim"
    (build_base, _), (final_base, final_runs) = stages(text)
    assert build_base == final_base == "${PYTHON_IMAGE}"
    assert not [r for r in final_runs if re.search(r"pip|apt-get|gcc|make", r)]


def debian_root() -> Path:
    """Debian's minimal root with python3 and venv, made once by debootstrap and kept in .cache/image/."""
    root, stamp = BASE_CACHE / "root", BASE_CACHE / "debootstrap"
    if stamp.exists() and stamp.read_text() == " ".join(DEBOOTSTRAP):
        return root
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is not installed here: apt-get install debootstrap", pytrace=False)
    shutil.rmtree(BASE_CACHE, ignore_errors=True)
    BASE_CACHE.mkdir(parents=True)
    done = subprocess.run([*DEBOOTSTRAP, str(root), MIRROR], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # What Debian's images leave out too: the package lists and the downloaded packages.
    for cache in ("var/lib/apt/lists", "var/cache/apt"):
        for path in (root / cache).iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    stamp.write_text(" ".join(DEBOOTSTRAP))
    return root


def host_ca_bundle() -> Path | None:
    """The CA bundle the host's pip trusts when it is not pip's own (a TLS-inspecting proxy's, say)."""
    for variable in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(variable) and Path(os.environ[variable]).is_file():
            return Path(os.environ[variable])
    shown = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.cert"], capture_output=True, text=True, timeout=60
    )
    cert = shown.stdout.strip()
    return Path(cert) if shown.returncode == 0 and cert and Path(cert).is_file() else None


@dataclass(frozen=True)
class Buildah:
    """buildah on a storage of its own (vfs), every container run with chroot isolation."""

    storage: Path

    def command(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.storage / "root"),
            "--runroot",
            str(self.storage / "run"),
            "--storage-driver",
            "vfs",
            *args,
        ]

    def __call__(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"buildah {' '.join(args)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done.stdout


@dataclass(frozen=True)
class Image:
    """The built image: its configuration, and a working container of it to run and look into."""

    buildah: Buildah
    config: dict[str, Any]
    container: str
    files: Path  # the container's root file system (vfs: a plain folder)

    @property
    def entrypoint(self) -> list[str]:
        return list(self.config["Entrypoint"])

    def run_argv(self, *args: str) -> list[str]:
        """The entrypoint's program with these arguments, as the image's user in its environment."""
        return self.buildah.command("run", "--isolation", "chroot", self.container, "--", self.entrypoint[0], *args)

    def pgradar(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.run_argv(*args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.fail("the image test builds with debootstrap and buildah as root: run it as root", pytrace=False)
    if shutil.which("buildah") is None:
        pytest.fail("buildah is not installed here: apt-get install buildah", pytrace=False)
    root = debian_root()
    storage = Path(tempfile.mkdtemp(prefix="pgradar-buildah-"))
    buildah = Buildah(storage)
    try:
        base = buildah("from", "scratch").strip()
        mounted = buildah("mount", base).strip()
        subprocess.run(["cp", "-a", f"{root}/.", mounted], check=True, timeout=300)
        buildah("config", "--env", f"PATH={DEBIAN_PATH}", "--cmd", "bash", base)
        buildah("commit", "--quiet", "--rm", base, BASE_IMAGE)
        build = ["build", "--isolation", "chroot", "--pull=never", "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}"]
        ca = host_ca_bundle()
        if ca is not None:  # the build's pip trusts what the host's pip trusts (mounted in RUN steps, not kept)
            (storage / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/host-ca.crt\n")
            build += ["-v", f"{ca}:/etc/ssl/certs/host-ca.crt:ro", "-v", f"{storage / 'pip.conf'}:/etc/pip.conf:ro"]
        buildah(*build, "--tag", IMAGE, str(ROOT), timeout=900)
        config = json.loads(buildah("inspect", "--type", "image", IMAGE))["OCIv1"]["config"]
        container = buildah("from", "--pull=never", IMAGE).strip()
        yield Image(buildah, config, container, Path(buildah("mount", container).strip()))
    finally:
        subprocess.run(buildah.command("rm", "--all"), capture_output=True, timeout=300)
        subprocess.run(buildah.command("rmi", "--all", "--force"), capture_output=True, timeout=300)
        shutil.rmtree(storage, ignore_errors=True)


def test_the_image_is_configured_to_run_the_agent(image: Image) -> None:
    assert image.entrypoint == ["pgradar", "run"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", image.config["User"]), f"numeric non-root user: {image.config['User']}"
    assert list(image.config["ExposedPorts"]) == ["9188/tcp"]
    env = dict(e.split("=", 1) for e in image.config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/pgradar/bin:") and env["PATH"].endswith(DEBIAN_PATH)


def test_the_image_holds_the_agent_and_nothing_of_the_build(image: Image) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = image.pgradar("--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"pgradar {version}", shown.stdout + shown.stderr
    venv = image.files / "opt" / "pgradar"
    assert not (venv / "bin" / "pip").exists() and not (image.files / "src").exists()
    assert not list(venv.rglob("__pycache__"))
    # the wheel built from the image's context against the source folders: nothing left out, nothing extra
    (site,) = venv.glob("lib/python3*/site-packages")
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


def descendant(pid: int, name: str) -> int | None:
    """The first process below ``pid`` whose command name is ``name`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # gone meanwhile
            continue
        if stat:
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    below, found = [pid], []
    while below:
        children = [child for child, parent in parents.items() if parent in below]
        found += children
        below = children
    for child in found:
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == name:
                return child
        except OSError:
            continue
    return None


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

    # The entrypoint as the image starts it: `pgradar run` and the arguments given to the container.
    port = free_port()
    agent = subprocess.Popen(
        image.run_argv(*image.entrypoint[1:], "--dsn", dsn, "--listen", f"127.0.0.1:{port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: answers(port, "/readyz") and "ready" in scrape(port, "/readyz"), 90, what="readiness")
        metrics = scrape(port, "/metrics")
        assert sample(metrics, "pgradar_up", target="main") == 1.0
        problems = json.loads(scrape(port, "/problems"))
        assert problems["version"] == 1 and problems["targets"][0]["name"] == "main"
        page = scrape(port, "/")
        assert "<title>pgradar status</title>" in page and "main" in page
    finally:
        # buildah kills its command on a signal of its own; the agent gets SIGTERM as from a container runtime
        inner = descendant(agent.pid, "pgradar")
        os.kill(inner if inner is not None else agent.pid, signal.SIGTERM)
        output = agent.communicate(timeout=60)[0]
    assert inner is not None, "no pgradar process under buildah run"
    assert agent.returncode == 0, output
    assert "stopping" in output and MONITOR_PASSWORD not in output
    assert not list((image.files / "opt" / "pgradar").rglob("__pycache__")), "the agent wrote bytecode at run time"
