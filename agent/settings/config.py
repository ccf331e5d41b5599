"""Configuration: YAML file, then ``PGRADAR_*`` environment, then flags.

The file is checked against a declarative schema (``SCHEMA``, walked by the
settings' one toolkit, ``validate.py``) that reports every problem at once,
each naming its key (``targets[1].dsn: ...``), so a bad deployment
fails at start with one line that says what to change, never later with a
traceback. Nothing here connects to a database.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pgradar.agent.model.custom_queries import CustomQuery
from pgradar.agent.model.findings import DEFAULT_TEXT_POLICY, TextPolicy
from pgradar.agent.model.jobs import COLLECTOR_INTERVALS, COLLECTOR_NAMES, JOB_INTERVALS
from pgradar.agent.model.thresholds import DEFAULT as DEFAULT_THRESHOLDS
from pgradar.agent.model.thresholds import NAMES as THRESHOLD_NAMES
from pgradar.agent.model.thresholds import Thresholds, with_overrides
from pgradar.agent.settings import custom_queries as custom
from pgradar.agent.settings import validate
from pgradar.agent.settings.custom_checks import check_set
from pgradar.agent.settings.ignores import IgnoreRule, check_rule

NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
ENV_PREFIX = "PGRADAR_"
# The DSN helpers live with the driver (pgradar.agent.collect.db, psycopg): imported where a DSN is parsed, so
# that importing this module (as ``pgradar --help`` does) loads no driver.


class ConfigError(ValueError):
    """Bad configuration; the message is one line naming the key and the fix."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Replica ``index`` of ``count``: it watches the targets whose name hashes to ``index``.

    Scale past one process the way Prometheus does (DESIGN 6): several agents,
    each a scrape target of its own, each watching a stable share of the
    targets; nothing aggregates them but Prometheus. The hash is CRC-32 of
    the name, the same in every process and release, so a target stays with
    its replica across restarts (docs/fleet.md).
    """

    index: int
    count: int

    def owns(self, name: str) -> bool:
        return zlib.crc32(name.encode()) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, hostname: str = "") -> Shard:
    """``I/N``; I may be ``ordinal``: the number after the last '-' of the host name (a StatefulSet's pod)."""
    index_text, sep, count_text = text.strip().partition("/")
    if index_text == "ordinal":
        index_text = hostname.rpartition("-")[2]
        if not index_text.isdigit():
            raise ConfigError(
                f"shard {text!r}: the host name {hostname!r} does not end in -<ordinal> (a StatefulSet's pods do)"
            )
    if not sep or not index_text.isdigit() or not count_text.isdigit() or not 0 <= int(index_text) < int(count_text):
        raise ConfigError(f"shard {text!r}: expected I/N with 0 <= I < N (or ordinal/N), for example 0/3")
    return Shard(int(index_text), int(count_text))


@dataclass(frozen=True, slots=True)
class DatabaseFilter:
    include: tuple[str, ...] = ()  # glob patterns; empty means every database
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TargetConfig:
    name: str
    dsn: str  # with the password from password_file folded in; never shown
    databases: DatabaseFilter = DatabaseFilter()
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    auto_explain_log: str | None = None  # the server log with auto_explain JSON plans (row_misestimate)
    explain_analyze: bool = False  # EXPLAIN ANALYZE of parameterless top reads, honoured on a standby only
    cpus: float | None = None  # the server's cores: CPU load above them is a wait_bottleneck (None: unknown)


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Config:
    targets: tuple[TargetConfig, ...]
    pgbouncers: tuple[TargetConfig, ...] = ()
    listen: Listen = Listen("", 9188)
    intervals: Mapping[str, float] = field(default_factory=dict)
    top_statements: int = 50
    top_tables: int = 200  # per-table series for the N most active tables (and every one a problem names)
    top_indexes: int = 200  # per-index series likewise
    relation_series: str = "dashboards"  # per-relation families: what the dashboards and alerts read, or "all"
    top_load_statements: int = 20  # statements with load series of their own; the rest under queryid="other"
    snapshots_kept: int = 5
    connect_timeout_s: int = 5
    statement_timeout_ms: int = 10_000
    lock_timeout_ms: int = 1_000
    log_level: str = "INFO"
    statement_text: TextPolicy = DEFAULT_TEXT_POLICY
    ignore: tuple[IgnoreRule, ...] = ()  # pgradar check: findings a team accepted
    custom_queries: tuple[CustomQuery, ...] = ()  # custom SQL collectors (agent/settings/custom_queries.py)
    shard: Shard | None = None  # None: every target

    def owned(self, targets: tuple[TargetConfig, ...]) -> tuple[TargetConfig, ...]:
        """The targets this replica watches."""
        return targets if self.shard is None else tuple(t for t in targets if self.shard.owns(t.name))

    def interval(self, job: str) -> float:
        """Seconds between runs of a collector (or of 'classify')."""
        if job in self.intervals:
            return self.intervals[job]
        return JOB_INTERVALS[job] if job in JOB_INTERVALS else COLLECTOR_INTERVALS[job]


# Every default of the configuration, once: the file, the environment, the flags and --help read them here.
DEFAULTS = Config(targets=())


# --- the schema ----------------------------------------------------------------------
# Declarative (agent/settings/validate.py): a dict of known keys, a list of one node, or a checker.

# limits.relation_series: "dashboards" exports the per-table and per-index families that a dashboard
# panel or alert rule reads; "all" adds table index scans, rows inserted and deleted, index rows read.
RELATION_SERIES = ("dashboards", "all")
_level = validate.one_of(("DEBUG", "INFO", "WARNING", "ERROR"), fold=True)
_FILTER = {"include": [validate.text], "exclude": [validate.text]}
_THRESHOLDS = dict.fromkeys(THRESHOLD_NAMES, validate.positive(float))


def _log_path(value: Any, path: str, errors: list[str]) -> Any:
    """A log file path; it may not exist yet (rotation), but it cannot be a folder."""
    validate.text(value, path, errors)
    if isinstance(value, str) and value.strip() and Path(value).is_dir():
        errors.append(f"{path}: {validate.show(value)} is a folder; name the server log file auto_explain writes to")
    return value


def _custom_list(value: Any, path: str, errors: list[str]) -> Any:
    """custom_queries: a list; each entry a query, or ``{file: PATH}``. Checked in full by ``_custom``."""
    if not isinstance(value, list):
        errors.append(f"{path}: expected a list of queries (or of file: PATH), got {type(value).__name__}")
        return []
    return value


_TARGET = {
    "name": validate.text,
    "dsn": validate.text,
    "password_file": validate.text,
    "databases": _FILTER,
    "thresholds": _THRESHOLDS,
    "auto_explain_log": _log_path,
    "explain_analyze": validate.boolean(),
    "cpus": validate.positive(float),
}
SCHEMA: dict[str, Any] = {
    "targets": [_TARGET],
    "pgbouncers": [{"name": validate.text, "dsn": validate.text, "password_file": validate.text}],
    "listen": validate.text,
    "intervals": dict.fromkeys((*COLLECTOR_NAMES, *JOB_INTERVALS), validate.positive(float)),
    "thresholds": _THRESHOLDS,
    "limits": {
        **dict.fromkeys(("top_statements", "top_tables", "top_indexes", "top_load_statements"), validate.positive(int)),
        "relation_series": validate.one_of(RELATION_SERIES),
    },
    "databases": _FILTER,
    "explain_analyze": validate.boolean(),
    "timeouts": dict.fromkeys(("connect_seconds", "statement_ms", "lock_ms"), validate.positive(int)),
    "snapshots_kept": validate.positive(int),
    "statement_text": {"max_length": validate.positive(int), "hide": validate.boolean()},
    "log_level": _level,
    "ignore": [check_rule],  # pgradar check: accepted findings (agent/settings/ignores.py)
    "custom_queries": _custom_list,
    "shard": validate.text,
}


# --- parsing pieces ---------------------------------------------------------------------


def split_named(spec_text: str) -> tuple[str | None, str]:
    """``NAME=DSN`` into (NAME, DSN); a libpq keyword before '=' means no name."""
    from pgradar.agent.collect.db import CONNINFO_KEYWORDS

    head, sep, rest = spec_text.partition("=")
    if sep and NAME_RE.fullmatch(head) and head.lower() not in CONNINFO_KEYWORDS and rest.strip():
        return head, rest
    return None, spec_text


def parse_listen(text: str) -> Listen:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen: expected [HOST]:PORT with a port from 0 to 65535, got {validate.show(text)}")
    return Listen(host.strip("[]"), int(port))


def default_name(dsn: str) -> str:
    from pgradar.agent.collect.db import parse_dsn

    params = parse_dsn(dsn)
    host = params.get("host", "localhost").split(",")[0]
    name = f"{host}:{params.get('port', '5432').split(',')[0]}"
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", name)


def _target(
    raw: Mapping[str, Any],
    where: str,
    errors: list[str],
    default_filter: DatabaseFilter,
    default_thresholds: Thresholds,
    default_analyze: bool = False,
) -> TargetConfig | None:
    from pgradar.agent.collect.db import BadDsn, parse_dsn, with_params

    dsn = raw.get("dsn")
    if dsn is None:
        errors.append(f"{where}.dsn: missing (each target needs a dsn)")
        return None
    if any(raw.get(key) is not None and not isinstance(raw[key], str) for key in ("dsn", "name", "password_file")):
        return None  # the schema has named the value that is not text
    try:
        parse_dsn(dsn)
    except BadDsn as exc:
        errors.append(f"{where}.dsn: not a valid connection string: {exc}")
        return None
    if raw.get("password_file"):
        try:
            password = Path(raw["password_file"]).read_text().strip()
        except OSError as exc:
            errors.append(f"{where}.password_file: cannot read {raw['password_file']}: {exc.strerror}")
            return None
        dsn = with_params(dsn, password=password)
    name = raw.get("name") or default_name(dsn)
    if not NAME_RE.fullmatch(name):
        errors.append(f"{where}.name: {validate.show(name)} must be letters, digits, '_', '.', ':' or '-' (at most 64)")
    filt = raw.get("databases")
    databases = (
        default_filter
        if filt is None
        else DatabaseFilter(tuple(filt.get("include", ())), tuple(filt.get("exclude", ())))
    )
    thresholds = with_overrides(default_thresholds, dict(raw.get("thresholds") or {}))
    return TargetConfig(
        name,
        dsn,
        databases,
        thresholds,
        raw.get("auto_explain_log") or None,
        bool(raw.get("explain_analyze", default_analyze)),
        float(raw["cpus"]) if raw.get("cpus") is not None else None,
    )


def _targets(
    items: Sequence[Mapping[str, Any]],
    key: str,
    errors: list[str],
    default_filter: DatabaseFilter,
    default_thresholds: Thresholds,
    default_analyze: bool = False,
) -> tuple[TargetConfig, ...]:
    found = [
        t
        for i, raw in enumerate(items)
        if (t := _target(raw, f"{key}[{i}]", errors, default_filter, default_thresholds, default_analyze))
    ]
    names = [t.name for t in found]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"{key}: the name {validate.show(name)} is used twice; give each a distinct NAME=")
    return tuple(found)


def _dsn_items(values: Sequence[str]) -> list[dict[str, str]]:
    items = []
    for value in values:
        name, dsn = split_named(value)
        items.append({"dsn": dsn, **({"name": name} if name else {})})
    return items


# --- the three layers --------------------------------------------------------------------


@dataclass(slots=True)
class Overrides:
    """What the environment or the command line sets; None means not set."""

    dsns: list[str] = field(default_factory=list)
    pgbouncers: list[str] = field(default_factory=list)
    listen: str | None = None
    intervals: dict[str, str] = field(default_factory=dict)
    top_statements: str | None = None
    log_level: str | None = None
    explain_analyze: str | bool | None = None  # every target's explain_analyze; env: a word, flag: a bool
    custom_query_files: list[str] = field(default_factory=list)  # --custom-queries FILE, added to the config's
    shard: str | None = None  # I/N or ordinal/N


def from_environment(env: Mapping[str, str]) -> tuple[str | None, Overrides]:
    """The config file path and overrides from ``PGRADAR_*`` variables."""
    out = Overrides()
    config_file = None
    for key, value in sorted(env.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :]
        if name == "CONFIG":
            config_file = value
        elif name == "DSN":
            out.dsns = [line for line in value.splitlines() if line.strip()]
        elif name == "PGBOUNCER":
            out.pgbouncers = [line for line in value.splitlines() if line.strip()]
        elif name == "LISTEN":
            out.listen = value
        elif name == "TOP_STATEMENTS":
            out.top_statements = value
        elif name == "LOG_LEVEL":
            out.log_level = value
        elif name == "EXPLAIN_ANALYZE":
            out.explain_analyze = value
        elif name == "SHARD":
            out.shard = value
        elif name.startswith("INTERVAL_") and name[9:].lower() in (*COLLECTOR_NAMES, *JOB_INTERVALS):
            out.intervals[name[9:].lower()] = value
        else:
            known = (
                "CONFIG, DSN, PGBOUNCER, LISTEN, TOP_STATEMENTS, LOG_LEVEL, EXPLAIN_ANALYZE, SHARD, "
                "INTERVAL_<COLLECTOR>"
            )
            raise ConfigError(f"environment: unknown variable {key} (known: PGRADAR_{{{known}}})")
    return config_file, out


def read_yaml(path: str, flag: str) -> Any:
    """A YAML file's data; unreadable or malformed files are a ConfigError naming the line."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {path}: {exc.strerror}") from None
    except ValueError:  # a NUL in the path: no file can have that name
        raise ConfigError(f"{flag}: {validate.show(path)} is not a file name") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(validate.yaml_problem(path, exc)) from None


def load_file(path: str) -> dict[str, Any]:
    data = read_yaml(path, "--config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (targets, listen, ...)")
    return data


def _number(text: str, where: str, kind: type, errors: list[str]) -> Any:
    try:
        value = kind(text)
    except ValueError:
        what = "whole number" if kind is int else "number"
        errors.append(f"{where}: expected a positive {what}, got {validate.show(text)}")
        return None
    problems: list[str] = []
    checked = validate.positive(kind)(value, where, problems)
    errors.extend(p.replace(validate.show(value), validate.show(text)) for p in problems)
    return checked


_SWITCH_WORDS = {
    "true": True,
    "on": True,
    "yes": True,
    "1": True,
    "false": False,
    "off": False,
    "no": False,
    "0": False,
}


def _switch(value: str | bool, where: str, errors: list[str]) -> bool | None:
    if isinstance(value, bool):
        return value
    if value.strip().lower() not in _SWITCH_WORDS:
        errors.append(f"{where}: expected true or false, got {validate.show(value)}")
        return None
    return _SWITCH_WORDS[value.strip().lower()]


def build(file_data: Mapping[str, Any], *layers: Overrides, require_targets: bool = True, hostname: str = "") -> Config:
    """Merge file data and override layers (later wins) into a checked Config."""
    errors: list[str] = []
    data = validate.check(dict(file_data), SCHEMA, "", errors)
    default_filter = DatabaseFilter(
        tuple(data.get("databases", {}).get("include", ())), tuple(data.get("databases", {}).get("exclude", ()))
    )
    target_items: list[dict[str, Any]] = list(data.get("targets", []))
    bouncer_items: list[dict[str, Any]] = list(data.get("pgbouncers", []))
    listen = data.get("listen", str(DEFAULTS.listen))
    intervals = dict(data.get("intervals", {}))
    top = data.get("limits", {}).get("top_statements", DEFAULTS.top_statements)
    level = data.get("log_level", DEFAULTS.log_level)
    analyze = data.get("explain_analyze")
    analyze_everywhere = None  # set by the environment or a flag: every target, whatever the file says
    shard_text = data.get("shard")
    for layer in layers:
        if layer.dsns:
            target_items = _dsn_items(layer.dsns)
        if layer.pgbouncers:
            bouncer_items = _dsn_items(layer.pgbouncers)
        listen = layer.listen if layer.listen is not None else listen
        for name, text in layer.intervals.items():
            intervals[name] = _number(text, f"interval {name}", float, errors)
        if layer.top_statements is not None:
            top = _number(layer.top_statements, "top statements", int, errors)
        if layer.log_level is not None:
            level = _level(layer.log_level, "log level", errors)
        if layer.explain_analyze is not None:
            analyze_everywhere = _switch(layer.explain_analyze, "explain analyze", errors)
        shard_text = layer.shard if layer.shard is not None else shard_text
    shard = None
    if shard_text is not None:
        try:
            shard = parse_shard(str(shard_text), hostname)
        except ConfigError as exc:
            errors.append(str(exc))
    thresholds = with_overrides(DEFAULT_THRESHOLDS, dict(data.get("thresholds", {})))
    targets = _targets(target_items, "targets", errors, default_filter, thresholds, analyze is True)
    if analyze_everywhere is not None:
        targets = tuple(replace(t, explain_analyze=analyze_everywhere) for t in targets)
    pgbouncers = _targets(bouncer_items, "pgbouncers", errors, DatabaseFilter(), thresholds)
    if require_targets and not target_items and not bouncer_items and not errors:
        errors.append("no targets: give --dsn [NAME=]DSN, PGRADAR_DSN, or targets: in --config")
    try:
        listen_at = parse_listen(str(listen))
    except ConfigError as exc:
        errors.append(str(exc))
        listen_at = DEFAULTS.listen
    timeouts = data.get("timeouts", {})
    custom_set = _custom(
        data.get("custom_queries", []),
        [f for layer in layers for f in layer.custom_query_files],
        custom.Defaults(session_timeout_s=int(timeouts.get("statement_ms", DEFAULTS.statement_timeout_ms)) / 1000),
        errors,
    )
    if errors:
        raise ConfigError("; ".join(errors))
    limits = data.get("limits", {})
    return Config(
        targets=targets,
        pgbouncers=pgbouncers,
        listen=listen_at,
        intervals=intervals,
        top_statements=int(top),
        top_tables=int(limits.get("top_tables", DEFAULTS.top_tables)),
        top_indexes=int(limits.get("top_indexes", DEFAULTS.top_indexes)),
        relation_series=str(limits.get("relation_series", DEFAULTS.relation_series)),
        top_load_statements=int(limits.get("top_load_statements", DEFAULTS.top_load_statements)),
        snapshots_kept=int(data.get("snapshots_kept", DEFAULTS.snapshots_kept)),
        connect_timeout_s=int(timeouts.get("connect_seconds", DEFAULTS.connect_timeout_s)),
        statement_timeout_ms=int(timeouts.get("statement_ms", DEFAULTS.statement_timeout_ms)),
        lock_timeout_ms=int(timeouts.get("lock_ms", DEFAULTS.lock_timeout_ms)),
        log_level=str(level),
        statement_text=TextPolicy(
            int(data.get("statement_text", {}).get("max_length", DEFAULTS.statement_text.max_length)),
            bool(data.get("statement_text", {}).get("hide", DEFAULTS.statement_text.hide)),
        ),
        ignore=tuple(data.get("ignore", ())),
        custom_queries=custom_set,
        shard=shard,
    )


def _custom(
    entries: Sequence[Any], files: Sequence[str], defaults: custom.Defaults, errors: list[str]
) -> tuple[CustomQuery, ...]:
    """The custom queries of the config (inline, or ``file:``) and of ``--custom-queries`` files, checked."""
    found: list[CustomQuery] = []
    inline = [e for e in entries if not (isinstance(e, dict) and "file" in e)]
    sources = [e["file"] for e in entries if isinstance(e, dict) and "file" in e] + list(files)
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and "file" in entry and set(entry) != {"file"}:
            errors.append(f"custom_queries[{i}]: a file entry takes only file: (got {', '.join(map(str, entry))})")
    if inline:
        queries, problems = custom.parse_native(inline, "custom_queries", defaults)
        found.extend(queries)
        errors.extend(problems)
    for i, source in enumerate(sources):
        if not isinstance(source, str) or not source.strip():
            errors.append(f"custom_queries: file {i}: expected a path, got {validate.show(source)}")
            continue
        data, problems = custom.read_file(source)
        if not problems:
            queries, problems = custom.parse_source(data, source, defaults)
            found.extend(queries)
        errors.extend(problems)
    errors.extend(check_set(found))
    return tuple(found)


def load(config_path: str | None, env: Mapping[str, str], flags: Overrides, require_targets: bool = True) -> Config:
    env_path, env_layer = from_environment(env)
    path = config_path or env_path
    file_data = load_file(path) if path else {}
    return build(file_data, env_layer, flags, require_targets=require_targets, hostname=env.get("HOSTNAME", ""))
