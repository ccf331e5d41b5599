"""Bad input ends in one line naming the problem, exit code 2, no traceback."""

import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "pgradar.commands.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--dsn", "host=db port=abc"], "invalid port"),
        (
            ["run", "--dsn", "postgresql://u:hunter2@db/x", "--interval", "statements=-5"],
            "interval statements: expected a positive number, got '-5'",
        ),
        (["run", "--dsn", "host=db", "--interval", "nosuch=5"], "unknown collector 'nosuch'"),
        (["run", "--dsn", "host=db", "--interval", "statements"], "expected COLLECTOR=SECONDS"),
        (["run", "--dsn", "host=db", "--listen", "nope"], "listen: expected [HOST]:PORT"),
        (["run", "--config", "/nonexistent/pgradar.yaml"], "cannot read /nonexistent/pgradar.yaml"),
        (["run"], "no targets"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["nosuchcommand"], "invalid choice"),
    ],
)
def test_bad_input(args: list[str], expected: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pgradar: error: ")
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr


def test_help_lists_the_collectors_and_their_intervals() -> None:
    proc = run("run", "--help")
    assert proc.returncode == 0
    for word in ("--dsn", "--config", "--listen", "statements=60s", "tables=300s", "PGRADAR_LISTEN"):
        assert word in proc.stdout
