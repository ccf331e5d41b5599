"""Flags of `pgradar demo`: bad values end in one line, exit 2."""

from __future__ import annotations

import pytest

from pgradar.commands import cli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--replay-pause", "0"], "argument --replay-pause: expected a number of seconds above 0, got '0'"),
        (
            ["demo", "--replay-resume", "nan"],
            "argument --replay-resume: expected a number of seconds above 0, got 'nan'",
        ),
        (["demo", "--listen", "nowhere"], "listen: expected [HOST]:PORT"),
    ],
)
def test_bad_values(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pgradar: error: ") and message in err and err.count("\n") == 1


def test_defaults() -> None:
    args = cli.build_parser().parse_args(["demo"])
    assert (args.listen, args.replay_pause, args.replay_resume) == ("127.0.0.1:9188", 240.0, 120.0)
