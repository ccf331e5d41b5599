"""The configuration's error lines, byte for byte, on recorded bad inputs.

Every case in ``fixtures/error_lines/cases.yaml`` is a bad config (unknown
keys, wrong types, bad intervals, thresholds and DSNs, bad ``ignore:`` rules,
bad inline custom queries), a bad environment, or a bad custom query file (in
postgres_exporter's ``queries.yaml`` format or pgradar's), with the one line
pgradar printed for it when the case was recorded. Users grep their logs and
CI output for these lines: a refactoring of the validators must leave them
as they are, order and punctuation included. ``{tmp}`` stands for a
temporary folder; ``{THRESHOLDS}``, ``{KINDS}`` and ``{JOBS}`` for the lists of
known names, which grow with every new threshold, kind and collector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pgradar.agent.model.findings import Kind
from pgradar.agent.model.jobs import COLLECTOR_NAMES, JOB_INTERVALS
from pgradar.agent.model.thresholds import NAMES as THRESHOLD_NAMES
from pgradar.agent.settings.config import ConfigError, Overrides, build, from_environment

CASES = yaml.safe_load((Path(__file__).parent / "fixtures" / "error_lines" / "cases.yaml").read_text())
DSN = "postgresql://pgradar@db-0:5432/postgres"


def _placed(value: Any, tmp: str) -> Any:
    """The input with ``{tmp}`` replaced by a real temporary folder."""
    if isinstance(value, str):
        return value.replace("{tmp}", tmp)
    if isinstance(value, list):
        return [_placed(v, tmp) for v in value]
    if isinstance(value, dict):
        return {_placed(k, tmp): _placed(v, tmp) for k, v in value.items()}
    return value


def error_line(kind: str, data: Any, tmp_path: Path) -> str:
    """The ConfigError message (the line ``pgradar: error:`` prints) for one recorded input."""
    tmp = str(tmp_path)
    try:
        if kind == "config":
            build(_placed(data, tmp))
        elif kind == "env":
            _, env = from_environment(data["env"])
            build(_placed(data["file"], tmp), env, hostname=data["env"].get("HOSTNAME", ""))
        elif kind == "file":
            path = tmp_path / "bad.yaml"
            path.write_text(data)
            build({"targets": [{"dsn": DSN}]}, Overrides(custom_query_files=[str(path)]))
        else:
            raise AssertionError(kind)
    except ConfigError as exc:
        return str(exc).replace(tmp, "{tmp}")
    raise AssertionError("no error")


def test_the_cases_cover_every_validator() -> None:
    kinds = {case["kind"] for case in CASES}
    assert kinds == {"config", "env", "file"}
    lines = " ".join(case["error"] for case in CASES)
    for part in ("unknown key", "ignore[0]", "custom_queries", ".dsn: not a valid connection string", "intervals."):
        assert part in lines, part


def expected_line(recorded: str) -> str:
    """The recorded line with the lists of known names as the code has them now.

    A new threshold or kind lengthens those lists; the rest of each line stays as recorded.
    """
    return (
        recorded.replace("{THRESHOLDS}", ", ".join(sorted(THRESHOLD_NAMES)))
        .replace("{KINDS}", ", ".join(k.value for k in Kind))
        .replace("{JOBS}", ", ".join(sorted((*COLLECTOR_NAMES, *JOB_INTERVALS))))
    )


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_the_error_line_is_the_recorded_one(case: dict[str, Any], tmp_path: Path) -> None:
    line = error_line(case["kind"], case["input"], tmp_path)
    assert line == expected_line(case["error"])
    assert "\n" not in line
