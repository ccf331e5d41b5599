"""Property-based: any configuration, DSN or flag value ends in a Config or in
one line naming what is wrong; never another exception, never a password."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pgradar.agent.settings.config import SCHEMA, ConfigError, Overrides, build, from_environment
from pgradar.commands import cli

SECRET = "hunter2-secret"

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True), st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
known_keys = st.sampled_from(sorted(SCHEMA))
dsn_like = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda h, p, rest: f"postgresql://mon:{SECRET}@{h}:{p}/{rest}",
        st.text(alphabet="abc.-:[]", max_size=10),
        st.text(max_size=6),
        st.text(max_size=10),
    ),
    st.builds(lambda k, v: f"host=db password={SECRET} {k}={v}", st.text(max_size=10), st.text(max_size=10)),
)


def assert_one_line_error(exc: ConfigError) -> None:
    message = str(exc)
    assert message and "\n" not in message
    assert SECRET not in message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(known_keys, st.text(max_size=10)), values, max_size=5))
@example({"custom_queries": [{"a\nb": 1}]})  # a newline in an unknown key once broke the one line
def test_any_config_document(data: dict) -> None:
    try:
        build(data)
    except ConfigError as exc:
        assert_one_line_error(exc)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"dsn": dsn_like}, optional={"name": st.text(max_size=20), "databases": values, "thresholds": values}
        ),
        max_size=3,
    )
)
def test_any_target_list(targets: list) -> None:
    try:
        build({"targets": targets})
    except ConfigError as exc:
        assert_one_line_error(exc)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=20).map(lambda k: "PGRADAR_" + k),
        st.text(max_size=30),
        max_size=3,
    )
)
def test_any_environment(env: dict) -> None:
    try:
        _, layer = from_environment(env)
        build({"targets": [{"dsn": "host=db"}]}, layer)
    except ConfigError as exc:
        assert_one_line_error(exc)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "--dsn",
                    "--interval",
                    "--listen",
                    "--top-statements",
                    "--config",
                    "--log-level",
                    "--format",
                    "--fail-on",
                ]
            ),
            dsn_like,
            st.text(max_size=20),
        ),
        max_size=6,
    )
)
@example(["--config", "\x00"])  # a NUL in a path made open() raise ValueError, not a one-line error
def test_any_command_line(args: list[str]) -> None:
    """Parsing and loading (not running) any argument list: a Config, or a usage/config error."""
    parser = cli.build_parser()
    try:
        parsed = parser.parse_args(["check", *args])
        cli.load_config(parsed)
    except (cli.UsageError, ConfigError) as exc:
        line = cli.error_line(exc)
        assert "\n" not in line
        assert f"//mon:{SECRET}@" not in line and f"password={SECRET}" not in line


@pytest.mark.parametrize("text", ["targets: [", "- a\n- b", "targets:\n  - name: a\n    dsn: x\n  foo: 1"])
def test_yaml_shapes(text: str, tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    with pytest.raises(ConfigError):
        cli.configuration.load(str(path), {}, Overrides()) if data is not None else cli.configuration.load_file(
            str(path)
        )
