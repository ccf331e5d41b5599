"""Configuration layering and validation: every bad value named, at once."""

from pathlib import Path

import pytest

from pgradar.agent.settings.config import (
    ConfigError,
    Overrides,
    build,
    from_environment,
    load,
    parse_listen,
    split_named,
)

DSN = "postgresql://pgradar@db-0:5432/postgres"


def test_minimal_file() -> None:
    cfg = build({"targets": [{"name": "primary", "dsn": DSN}], "listen": ":9188"})
    assert [t.name for t in cfg.targets] == ["primary"]
    assert (cfg.listen.host, cfg.listen.port) == ("", 9188)
    assert cfg.interval("statements") == 60


def test_unknown_keys_are_named_with_their_path() -> None:
    with pytest.raises(ConfigError) as err:
        build({"targets": [{"name": "a", "dsn": DSN, "dns": "x"}], "listn": ":1"})
    message = str(err.value)
    assert "targets[0].dns: unknown key" in message
    assert "listn: unknown key" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"intervals": {"statements": -5}}, "intervals.statements: expected a positive number, got -5"),
        ({"intervals": {"statements": "soon"}}, "intervals.statements: expected a positive number"),
        ({"intervals": {"bogus": 5}}, "intervals.bogus: unknown key"),
        ({"limits": {"top_statements": 2.5}}, "limits.top_statements: expected a positive whole number"),
        ({"targets": {"name": "x"}}, "targets: expected a list"),
        ({"targets": [{"name": "x"}]}, "targets[0].dsn: missing"),
        ({"targets": [{"dsn": "host=a port=notaport"}]}, "targets[0].dsn: not a valid connection string"),
        ({"targets": [{"dsn": "host='open"}]}, "unterminated quoted string"),
        ({"targets": [{"name": "a", "dsn": DSN}, {"name": "a", "dsn": DSN}]}, "the name 'a' is used twice"),
        ({"targets": [{"name": "a b", "dsn": DSN}]}, "targets[0].name: 'a b' must be"),
        ({"targets": [{"dsn": DSN}], "listen": "9188"}, "listen: expected [HOST]:PORT"),
        ({"targets": [{"dsn": DSN}], "listen": ":70000"}, "listen: expected [HOST]:PORT"),
        ({"targets": [{"dsn": DSN}], "log_level": "loud"}, "log_level: expected one of"),
        ({}, "no targets"),
    ],
)
def test_bad_values_are_named(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(data)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_environment_overrides_file_and_flags_override_both() -> None:
    file_data = {"targets": [{"name": "file", "dsn": DSN}], "listen": ":1000", "limits": {"top_statements": 7}}
    _, env = from_environment(
        {"PGRADAR_LISTEN": ":2000", "PGRADAR_TOP_STATEMENTS": "9", "PGRADAR_DSN": "env=" + DSN, "PATH": "/bin"}
    )
    cfg = build(file_data, env)
    assert cfg.listen.port == 2000 and cfg.top_statements == 9 and cfg.targets[0].name == "env"
    cfg = build(file_data, env, Overrides(listen=":3000", dsns=["flag=" + DSN]))
    assert cfg.listen.port == 3000 and cfg.targets[0].name == "flag"


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="PGRADAR_LSTEN"):
        from_environment({"PGRADAR_LSTEN": ":1"})


def test_environment_interval_is_checked() -> None:
    _, env = from_environment({"PGRADAR_INTERVAL_TABLES": "-5"})
    with pytest.raises(ConfigError, match="interval tables: expected a positive number, got '-5'"):
        build({"targets": [{"dsn": DSN}]}, env)


def test_password_file_is_folded_into_the_dsn(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    cfg = build({"targets": [{"name": "a", "dsn": DSN, "password_file": str(secret)}]})
    assert "password=s3cret" in cfg.targets[0].dsn
    with pytest.raises(ConfigError, match=r"targets\[0\].password_file: cannot read"):
        build({"targets": [{"name": "a", "dsn": DSN, "password_file": str(tmp_path / "missing")}]})


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("targets:\n  - name: a\n    dsn: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load(str(path), {}, Overrides())
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "nope.yaml"), {}, Overrides())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("primary=postgresql://u@h/db", ("primary", "postgresql://u@h/db")),
        ("primary=host=h port=5432", ("primary", "host=h port=5432")),
        ("host=h port=5432", (None, "host=h port=5432")),
        ("dbname=x", (None, "dbname=x")),
        ("postgresql://u@h/db?sslmode=require", (None, "postgresql://u@h/db?sslmode=require")),
    ],
)
def test_split_named(text: str, expected: tuple) -> None:
    assert split_named(text) == expected


def test_default_name_is_host_and_port() -> None:
    cfg = build({}, Overrides(dsns=["host=db-1 port=6000", "postgresql://x@db-2/postgres"]))
    assert [t.name for t in cfg.targets] == ["db-1:6000", "db-2:5432"]


def test_listen_forms() -> None:
    assert parse_listen(":9188").port == 9188
    assert parse_listen("127.0.0.1:0").host == "127.0.0.1"
    assert parse_listen("[::1]:9188").host == "::1"


def test_auto_explain_log_per_target(tmp_path: Path) -> None:
    log = tmp_path / "postgresql.log"  # need not exist yet: the server may not have rotated into it
    cfg = build({"targets": [{"name": "a", "dsn": DSN, "auto_explain_log": str(log)}, {"name": "b", "dsn": DSN}]})
    assert [t.auto_explain_log for t in cfg.targets] == [str(log), None]
    assert cfg.interval("auto_explain") == 30
    with pytest.raises(ConfigError, match=r"targets\[0\]\.auto_explain_log: .* is a folder"):
        build({"targets": [{"name": "a", "dsn": DSN, "auto_explain_log": str(tmp_path)}]})


def test_explain_analyze_per_target_default_and_overrides() -> None:
    data = {
        "explain_analyze": True,
        "targets": [{"name": "a", "dsn": DSN}, {"name": "b", "dsn": DSN, "explain_analyze": False}],
    }
    assert [t.explain_analyze for t in build(data).targets] == [True, False]
    assert build({"targets": [{"name": "a", "dsn": DSN}]}).targets[0].explain_analyze is False  # off by default
    with pytest.raises(ConfigError, match=r"targets\[0\]\.explain_analyze: expected true or false, got 'yes'"):
        build({"targets": [{"name": "a", "dsn": DSN, "explain_analyze": "yes"}]})
    _, env = from_environment({"PGRADAR_EXPLAIN_ANALYZE": "off"})
    assert [t.explain_analyze for t in build(data, env).targets] == [False, False]  # env over the file
    _, env = from_environment({"PGRADAR_EXPLAIN_ANALYZE": "On"})
    assert [t.explain_analyze for t in build(data, env).targets] == [True, True]
    flags = Overrides(explain_analyze=False)
    assert [t.explain_analyze for t in build(data, env, flags).targets] == [False, False]  # the flag over both
    _, env = from_environment({"PGRADAR_EXPLAIN_ANALYZE": "sometimes"})
    with pytest.raises(ConfigError, match="explain analyze: expected true or false, got 'sometimes'"):
        build(data, env)


def test_shards_split_the_targets_stably_and_completely() -> None:
    """Every target is watched by exactly one of N replicas, the same one on every start."""
    from pgradar.agent.runtime.agent import Agent
    from pgradar.agent.settings import config as configuration
    from pgradar.agent.settings.config import build, parse_shard

    dsns = [f"db{n:03d}=postgresql://m@db{n}:5432/postgres" for n in range(100)]
    owners: dict[str, list[int]] = {}
    for i in range(3):
        config = build({}, configuration.Overrides(dsns=dsns, shard=f"{i}/3"))
        agent = Agent(config)
        assert 20 < len(agent.runtimes) < 47  # about a third each
        for name in agent.runtimes:
            owners.setdefault(name, []).append(i)
    assert len(owners) == 100 and all(len(v) == 1 for v in owners.values())
    assert parse_shard("ordinal/3", "pgradar-2") == parse_shard("2/3")
    assert build({"shard": "1/3"}, configuration.Overrides(dsns=dsns)).shard == parse_shard("1/3")
    env_path, env = configuration.from_environment({"PGRADAR_SHARD": "ordinal/4", "HOSTNAME": "x"})
    assert env.shard == "ordinal/4" and env_path is None
    with pytest.raises(configuration.ConfigError, match="does not end in -<ordinal>"):
        configuration.load(
            None, {"PGRADAR_SHARD": "ordinal/4", "HOSTNAME": "pgradar"}, configuration.Overrides(dsns=dsns)
        )
    for bad in ("3/3", "1", "a/2", "-1/2"):
        with pytest.raises(configuration.ConfigError, match="expected I/N"):
            build({}, configuration.Overrides(dsns=dsns, shard=bad))
