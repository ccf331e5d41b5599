"""The status page of `pgradar run` (a child process) against a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import monitor_dsn, scrape, superuser, wait_for

from pgradar.commands.embedded import Cluster, free_port


@pytest.mark.parametrize("pg", [18], indirect=True, ids=["pg18"])
def test_run_serves_the_status_page(pg: Cluster, tmp_path: Path) -> None:
    with superuser(pg, "app") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS status_page_t (id int PRIMARY KEY, a_rather_long_column_name int)")
    port = free_port()
    config = tmp_path / "pgradar.yml"
    config.write_text("statement_text: {max_length: 30}\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgradar.commands.cli",
            "run",
            "--listen",
            f"127.0.0.1:{port}",
            "--dsn",
            f"main={monitor_dsn(pg)}",
            "--interval",
            "statements=1",
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")},
    )
    try:
        wait_for(lambda: _page(port) and 'data-target="main"' in _page(port), 30, what="the status page")

        def with_statement() -> str | None:
            with superuser(pg, "app") as conn:
                conn.execute("SELECT a_rather_long_column_name, id FROM status_page_t WHERE id = 1")
            page = _page(port)
            return page if "SELECT a_rather_long_column_" in page else None

        page = wait_for(with_statement, 30, what="a statement of app on the page")
        assert "18." in page and '<span class="badge up">up</span>' in page
        assert "SELECT a_rather_long_column_name, id" not in page  # cut at 30 characters
        assert "<script" not in page
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def _page(port: int) -> str:
    try:
        return scrape(port, "/", timeout=5)
    except OSError:
        return ""
