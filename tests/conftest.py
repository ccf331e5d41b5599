"""Real servers for the integration tests.

Every test that needs PostgreSQL asks for a version; the cluster for it is
started once per session (its own folder and port, pg_stat_statements
preloaded) and stopped at the end. A version that is not installed fails
with the install step, it is never skipped: `make servers` (or .ci/run)
installs all six.

TEST_PG_VERSIONS=13,18 narrows a local run; CI runs them all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgradar.agent.embedded import Cluster, Installation, Sandbox, find_installations
from support import HEAVY, VERSIONS, installation, prepare


@pytest.fixture(scope="session")
def installations() -> dict[int, Installation]:
    return find_installations()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


_clusters: dict[int, Cluster] = {}


@pytest.fixture(params=VERSIONS, ids=lambda v: f"pg{v}")
def pg(request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox) -> Cluster:
    """The shared cluster of one version (tests must leave it as they found it)."""
    major = request.param
    if major not in _clusters:
        _clusters[major] = prepare(sandbox.cluster(installation(installations, major), f"pg{major}"))
    return _clusters[major]


@pytest.fixture(params=HEAVY, ids=lambda v: f"pg{v}")
def fresh_pg(request: pytest.FixtureRequest, installations: dict[int, Installation],
             sandbox: Sandbox) -> Iterator[Cluster]:
    """A cluster of its own, for tests that stop, reset or reconfigure it."""
    major = request.param
    cluster = sandbox.cluster(installation(installations, major), f"fresh{major}-{request.node.name[-40:]}"
                              .replace("[", "-").replace("]", ""))
    prepare(cluster)
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)
