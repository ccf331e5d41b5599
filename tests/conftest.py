"""Real servers for the integration tests.

Every test that needs PostgreSQL asks for a version; the cluster for it is
started once per session (its own folder and port, pg_stat_statements
preloaded) and stopped at the end. A version that is not installed fails
with the install step, it is never skipped: `make test` (or `make servers`)
installs all six.

TEST_PG_VERSIONS=13,18 narrows a local run; CI runs them all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import (
    BOUNCER_CLIENT_PASSWORD,
    DJANGO,
    HEAVY,
    INSTALL_HINT,
    MONITOR_PASSWORD,
    MONITOR_ROLE,
    VERSIONS,
    Bouncer,
    find_pgbouncer,
    installation,
    prepare,
)

from pgradar.commands.embedded import (
    Cluster,
    Installation,
    Sandbox,
    find_installations,
    free_port,
)


@pytest.fixture(scope="session")
def installations() -> dict[int, Installation]:
    return find_installations()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


_clusters: dict[int, Cluster] = {}


def _shared(major: int, installations: dict[int, Installation], sandbox: Sandbox) -> Cluster:
    if major not in _clusters:
        _clusters[major] = prepare(sandbox.cluster(installation(installations, major), f"pg{major}"))
    return _clusters[major]


@pytest.fixture(params=VERSIONS, ids=lambda v: f"pg{v}")
def pg(request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox) -> Cluster:
    """The shared cluster of one version (tests must leave it as they found it)."""
    return _shared(request.param, installations, sandbox)


@pytest.fixture(params=HEAVY, ids=lambda v: f"pg{v}")
def heavy_pg(request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox) -> Cluster:
    """The shared cluster of the oldest and newest versions, for scenarios (left as found)."""
    return _shared(request.param, installations, sandbox)


_standbys: dict[int, Cluster] = {}


def _standby_of(primary: Cluster, installations: dict[int, Installation], sandbox: Sandbox) -> Cluster:
    """The streaming standby of a shared cluster, named (application_name) pg<major>-standby."""
    if primary.major not in _standbys:
        tools = None
        if primary.installation.tool("pg_basebackup") is None:
            tools = next(
                (
                    i
                    for _, i in sorted(installations.items(), reverse=True)
                    if i.major >= primary.major and i.tool("pg_basebackup")
                ),
                None,
            )
            if tools is None:
                pytest.fail(
                    f"no pg_basebackup for a PostgreSQL {primary.major} standby: {INSTALL_HINT[18]}", pytrace=False
                )
        _standbys[primary.major] = sandbox.standby(primary, f"pg{primary.major}-standby", basebackup_from=tools)
    return _standbys[primary.major]


@pytest.fixture
def pg_standby(pg: Cluster, installations: dict[int, Installation], sandbox: Sandbox) -> Cluster:
    """A streaming standby of ``pg`` (npm builds borrow a newer pg_basebackup)."""
    return _standby_of(pg, installations, sandbox)


@pytest.fixture
def heavy_standby(heavy_pg: Cluster, installations: dict[int, Installation], sandbox: Sandbox) -> Cluster:
    """A streaming standby of ``heavy_pg``; tests that pause its replay resume it."""
    return _standby_of(heavy_pg, installations, sandbox)


@pytest.fixture(params=HEAVY, ids=lambda v: f"pg{v}")
def fresh_pg(
    request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox
) -> Iterator[Cluster]:
    """A cluster of its own, for tests that stop, reset or reconfigure it."""
    yield from _fresh(request, installations, sandbox)


def _fresh(
    request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox
) -> Iterator[Cluster]:
    major = request.param
    cluster = sandbox.cluster(
        installation(installations, major), f"fresh{major}-{request.node.name[-40:]}".replace("[", "-").replace("]", "")
    )
    prepare(cluster)
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)


@pytest.fixture(params=DJANGO, ids=lambda v: f"pg{v}")
def django_pg(
    request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox
) -> Iterator[Cluster]:
    """A cluster of its own for the Django application: Django 5.2 refuses servers older than 14, so
    15 and 18 (the oldest and newest of the installed ones it serves) stand in for 13 and 18."""
    yield from _fresh(request, installations, sandbox)


@pytest.fixture
def pgbouncer(installations: dict[int, Installation], sandbox: Sandbox) -> Iterator[Bouncer]:
    """A pgbouncer (pool_size 2, session pooling) in front of the newest shared cluster's ``app``.

    Clients log in as postgres with BOUNCER_CLIENT_PASSWORD; the monitor role
    may use the admin console.
    """
    binary = find_pgbouncer()
    if binary is None:
        pytest.fail("pgbouncer is not installed here: apt-get install pgbouncer", pytrace=False)
    server = _shared(max(HEAVY), installations, sandbox)
    bouncer = Bouncer(
        binary,
        sandbox.root / f"pgbouncer-{free_port()}",
        server,
        {"app": "app"},
        {"postgres": BOUNCER_CLIENT_PASSWORD, MONITOR_ROLE: MONITOR_PASSWORD},
        (MONITOR_ROLE,),
        {"default_pool_size": "2", "pool_mode": "session"},
    ).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="session")
def django_settings() -> None:
    """Django configured once per process, no project (settings.configure): the ORM tests point its
    connection at their cluster."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "app", "USER": "postgres"}},
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
