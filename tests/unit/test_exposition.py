"""/metrics bodies are rendered when the state changes, not on each scrape (no sockets)."""

import time

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from pgradar.exporters.http import Exposition

TEXT = "text/plain"
OPENMETRICS = "application/openmetrics-text;version=1.0.0"


class Counting(Collector):
    def __init__(self) -> None:
        self.value = 1.0
        self.collections = 0

    def describe(self):
        return []

    def collect(self):
        self.collections += 1
        yield GaugeMetricFamily("pgradar_up", "help", value=self.value)


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_scrapes_serve_the_latest_render_and_a_change_renders_every_format_asked_for() -> None:
    source = Counting()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(source)
    exposition = Exposition(registry, settle_s=0.01)
    try:
        _, text = exposition.body(TEXT)
        content_type, om = exposition.body(OPENMETRICS)
        assert b"pgradar_up 1.0" in text and om.endswith(b"# EOF\n") and "openmetrics" in content_type
        source.value = 2.0
        for _ in range(5):  # scrapes do not collect again
            assert exposition.body(TEXT)[1] == text
        assert source.collections == 2
        exposition.changed()
        wait_until(
            lambda: (
                b"pgradar_up 2.0" in exposition.body(TEXT)[1] and b"pgradar_up 2.0" in exposition.body(OPENMETRICS)[1]
            )
        )
        assert source.collections == 4  # one render per format, not per scrape
    finally:
        exposition.stop()


def test_changes_every_moment_render_at_most_once_per_period_and_the_last_change_is_served() -> None:
    """The load sampler changes the state every second: renders follow at the exposition's own pace."""
    source = Counting()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(source)
    exposition = Exposition(registry, settle_s=0.01, every_s=0.4)
    try:
        exposition.body(TEXT)
        started, renders = time.monotonic(), exposition.renders
        while time.monotonic() - started < 1.2:
            source.value += 1
            exposition.changed()
            time.sleep(0.01)
        last = source.value
        # one render per 0.4 s period (the first may start at once), never one per change (about 100)
        assert exposition.renders - renders <= 4
        wait_until(lambda: f"pgradar_up {last}".encode() in exposition.body(TEXT)[1])
    finally:
        exposition.stop()
