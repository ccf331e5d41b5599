"""A short soak: memory stays flat and series stay bounded under statement churn.

scripts/soak.py runs the long version (600 polls by default) and prints the figures.
"""

import sys
from pathlib import Path

from support import HEAVY

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from soak import soak


def test_memory_flat_and_series_bounded_under_churn() -> None:
    result = soak(polls=45, top=10, major=max(HEAVY), progress=False)
    print(result)
    growth_mib = (result.rss_at_end_kib - result.rss_after_warmup_kib) / 1024
    assert growth_mib < 10, f"RSS grew {growth_mib:.1f} MiB after warm-up: {result}"
    assert 0 < result.max_statement_series <= 10
    assert result.max_series < 1000
