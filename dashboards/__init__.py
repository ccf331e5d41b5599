"""Grafana dashboards as code: ``pgradar dashboards`` writes them as JSON.

The JSON files under ``dashboards/json/`` are generated from ``boards.py`` and
committed; a test fails when they are out of date. They import into Grafana
as they are: a ``datasource`` variable of type prometheus, no fixed data
source uid, stable dashboard uids, a set ``schemaVersion``.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafanalib._gen import DashboardEncoder

from .boards import DASHBOARDS

JSON_DIR = Path(__file__).parent / "json"


def render_all() -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    out = {}
    for build in DASHBOARDS:
        board = build()
        out[f"{board.uid}.json"] = (
            json.dumps(board.to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"
        )
    return out


def write_all(out_dir: Path) -> list[Path]:
    """Write every dashboard into ``out_dir`` (the repository's copy: ``pgradar dashboards --out dashboards/json``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written
