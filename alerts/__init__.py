"""Prometheus alert rules for pgradar: one rule file per area, their promtool unit tests, the runbook.

The rule files are data, installed with the package so that a deployment (the
Helm chart, a config-management role) can take them from ``RULES_DIR``.
"""

from __future__ import annotations

from pathlib import Path

RULES_DIR = Path(__file__).parent
RUNBOOK = RULES_DIR / "RUNBOOK.md"


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.rules.yml"))
