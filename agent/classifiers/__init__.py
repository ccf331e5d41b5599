"""The classifiers: pure functions (Observation, Thresholds) -> findings.

One module per family; each exports ``CLASSIFIERS``, a tuple of functions,
and this package lists the families in one place. A classifier's docstring
states its rule and its evidence. A classifier that raises is reported by
``classify`` and skipped; the others still run. The index recommendations
of all of them are then merged per table (``onefix``: one cause, one fix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pgradar.agent.classifiers import (
    deadlocks,
    horizon,
    indexes,
    load,
    nplusone,
    onefix,
    patterns,
    plans,
    pools,
    predicates,
    regressions,
    replication,
    sessions,
    statements,
    tables,
    timeouts,
    vacuum,
)
from pgradar.agent.model.findings import Finding
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import Thresholds

Classifier = Callable[[Observation, Thresholds], Iterable[Finding]]

CLASSIFIERS: tuple[Classifier, ...] = (
    *tables.CLASSIFIERS,
    *indexes.CLASSIFIERS,
    *plans.CLASSIFIERS,
    *replication.CLASSIFIERS,
    *sessions.CLASSIFIERS,
    *pools.CLASSIFIERS,
    *statements.CLASSIFIERS,
    *nplusone.CLASSIFIERS,
    *predicates.CLASSIFIERS,
    *regressions.CLASSIFIERS,
    *patterns.CLASSIFIERS,
    *deadlocks.CLASSIFIERS,
    *timeouts.CLASSIFIERS,
    *load.CLASSIFIERS,
    *horizon.CLASSIFIERS,
    *vacuum.CLASSIFIERS,
)


def classify(
    obs: Observation, thresholds: Thresholds, classifiers: Iterable[Classifier] = CLASSIFIERS
) -> tuple[list[Finding], list[str]]:
    """Every finding for one observation, and the errors of classifiers that failed."""
    findings: list[Finding] = []
    errors: list[str] = []
    for classifier in classifiers:
        try:
            findings.extend(classifier(obs, thresholds))
        except Exception as exc:  # one broken rule must not hide the others
            errors.append(f"{classifier.__module__}.{classifier.__name__}: {type(exc).__name__}: {exc}")
    return load.join_findings(onefix.one_fix_per_table(findings)), errors
