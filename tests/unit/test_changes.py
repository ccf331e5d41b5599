"""One change logger for every job of a target: a line when the condition changes, never per run."""

from __future__ import annotations

import logging

import pytest

from pgradar.agent.runtime.changes import ChangeLog


def test_a_condition_is_logged_once_and_its_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    changes = ChangeLog(logging.getLogger("pgradar.test"), "primary")
    with caplog.at_level(logging.INFO, logger="pgradar.test"):
        changes.note("tables", "ok")  # healthy from the start: nothing to say
        for _ in range(3):
            changes.note("tables", "collector tables failed: boom", logging.WARNING)
        changes.note("tables", "ok")
        changes.note("tables", "ok")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "target primary: collector tables failed: boom"),
        ("INFO", "target primary: tables recovered"),
    ]


def test_same_as_keeps_a_changing_message_to_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """A backoff's "next try in N run(s)" changes every time; the condition does not."""
    changes = ChangeLog(logging.getLogger("pgradar.test"), "primary")
    with caplog.at_level(logging.INFO, logger="pgradar.test"):
        for runs in (1, 2, 4):
            changes.note(
                "custom query q",
                f"custom query q failed: boom; next try in {runs + 1} run(s)",
                logging.WARNING,
                same_as="q: failed: boom",
            )
        changes.note("custom query q", "custom query q failed: other; next try in 2 run(s)", same_as="q: failed: other")
        changes.note("custom query q", "ok")
    assert [r.getMessage() for r in caplog.records] == [
        "target primary: custom query q failed: boom; next try in 2 run(s)",
        "target primary: custom query q failed: other; next try in 2 run(s)",
        "target primary: custom query q recovered",
    ]
