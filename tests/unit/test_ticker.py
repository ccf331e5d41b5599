"""The load sampler's ticker: a fixed grid of due times, one run at a time, overrun slots counted (no server)."""

import threading
import time

from pgradar.agent.runtime.ticker import Ticker, next_due


def test_next_due_keeps_the_grid_and_counts_the_slots_a_run_overran() -> None:
    assert next_due(100.0, 100.3, 1.0) == (101.0, 0)  # on time
    assert next_due(100.0, 102.5, 1.0) == (103.0, 2)  # 101 and 102 passed while it ran
    assert next_due(100.0, 99.0, 1.0) == (101.0, 0)  # a clock that stepped back never counts a slot


def test_runs_on_the_grid_until_stopped_and_hears_of_each_run() -> None:
    starts: list[float] = []
    ran = threading.Event()
    first = time.time() + 0.05
    ticker = Ticker("test", lambda: starts.append(time.time()), first, 0.1, skipped=lambda n: None, ran=ran.set)
    ticker.start()
    time.sleep(0.58)
    ticker.stop()
    count = len(starts)
    time.sleep(0.25)
    assert len(starts) == count  # nothing after stop()
    assert 5 <= count <= 7 and ran.is_set()
    # every start near its slot: first + k * interval, not drifting by the runs' own time
    assert all(abs((s - first) - round((s - first) / 0.1) * 0.1) < 0.05 for s in starts)


def test_a_run_longer_than_the_interval_skips_slots_and_a_failing_run_does_not_stop_it() -> None:
    skipped: list[int] = []
    runs = [0]

    def run() -> None:
        runs[0] += 1
        if runs[0] == 1:
            time.sleep(0.35)  # overruns the slots at 0.1, 0.2 and 0.3
        raise RuntimeError("a bug in a run")

    ticker = Ticker("test", run, time.time(), 0.1, skipped=skipped.append)
    ticker.start()
    time.sleep(0.62)
    ticker.stop()
    assert skipped == [3]
    assert runs[0] >= 3  # it went on after the first run raised
