"""Passwords never survive into a message; DSNs are checked without connecting."""

import pytest

from pgradar.agent.collect.db import BadDsn, parse_dsn, redact


@pytest.mark.parametrize(
    "text",
    [
        "could not connect to postgresql://mon:hunter2@db/app",
        "conninfo: host=db password=hunter2 user=mon",
        "conninfo: host=db password='hunter2' user=mon",
        "conninfo: host=db PASSWORD = hunter2",
    ],
)
def test_redact_patterns(text: str) -> None:
    assert "hunter2" not in redact(text)


def test_redact_by_value_from_dsn() -> None:
    dsn = "host=db user=mon password=p4ss-w0rd"
    assert redact("FATAL: something echoed p4ss-w0rd back", dsn) == "FATAL: something echoed *** back"


def test_bad_dsn_message_does_not_echo_password() -> None:
    with pytest.raises(BadDsn) as err:
        parse_dsn("host=db password=hunter2 port='unterminated")
    assert "hunter2" not in str(err.value)


def test_port_is_checked() -> None:
    with pytest.raises(BadDsn, match="invalid port"):
        parse_dsn("host=db port=0")
    assert parse_dsn("host=a,b port=5432,5433")["port"] == "5432,5433"


def test_parse_errors_do_not_quote_the_dsn() -> None:
    with pytest.raises(BadDsn) as err:
        parse_dsn("hunter2-secret")
    assert "hunter2" not in str(err.value) and 'a word without "="' in str(err.value)
    with pytest.raises(BadDsn, match='invalid connection option "dns"'):
        parse_dsn("dns=x")
    with pytest.raises(BadDsn, match="invalid port"):
        parse_dsn("postgresql://:\u00b9")
