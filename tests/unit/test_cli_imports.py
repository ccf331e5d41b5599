"""The command line's front door is light: ``--version`` and every ``--help`` load no heavy library.

Checked by what a fresh interpreter has in ``sys.modules`` after the command, not by timing (timings
on a shared machine prove nothing): an import through the config module is enough to pull in sqlglot
and psycopg.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pgradar.agent.model import jobs
from pgradar.agent.runtime import registry

HEAVY = ("sqlglot", "psycopg", "apscheduler", "prometheus_client", "grafanalib")
PROBE = """
import json, sys
from pgradar.commands.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(m.split(".")[0] for m in sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["run", "--help"],
        ["check", "--help"],
        ["explain", "--help"],
        ["dashboards", "--help"],
        ["demo", "--help"],
    ],
)
def test_version_and_help_import_no_heavy_library(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    assert "usage: pgradar" in done.stdout or done.stdout.startswith("pgradar ")
    loaded = sorted(set(HEAVY) & set(report["modules"]))
    assert loaded == [], f"pgradar {' '.join(args)} imported {loaded}"


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    done = subprocess.run(
        [sys.executable, "-m", "pgradar.commands.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == f"pgradar {version('pgradar')}"


def test_the_leaf_job_list_matches_the_collector_registry() -> None:
    """jobs.py names every collector so --help need not import the registry: keep the two equal."""
    assert registry.names_for(registry.POSTGRESQL) == jobs.COLLECTOR_NAMES
    assert set(registry.names_for(registry.PGBOUNCER)) <= set(jobs.JOB_INTERVALS)
    assert {c.target_kind for c in registry.COLLECTORS} == {registry.POSTGRESQL, registry.PGBOUNCER}
