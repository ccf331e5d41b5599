#!/bin/sh
# pgradar as a gate around an application's test suite (or a deploy):
#   1. baseline the counters (the role needs pg_monitor, not the right to reset statistics)
#   2. run the tests
#   3. judge only what the tests did; write JUnit for the CI to publish
#
# Usage: GATE_DSN=postgresql://pgradar@localhost:5432/postgres examples/ci/gate.sh make test
# Environment (not PGRADAR_*: pgradar reads those itself and refuses unknown ones):
#   GATE_DSN        the server the tests use (a maintenance database where
#                      CREATE EXTENSION pg_stat_statements was run)
#   GATE_DATABASE   judge this database only (optional)
#   GATE_FAIL_ON    info, warning (default) or critical
#   GATE_OUT        folder for baseline.json and pgradar-junit.xml (default ./pgradar-out)
set -eu

: "${GATE_DSN:?set GATE_DSN to the database server the tests use}"
out="${GATE_OUT:-pgradar-out}"
fail_on="${GATE_FAIL_ON:-warning}"
mkdir -p "$out"
scope=""
if [ -n "${GATE_DATABASE:-}" ]; then
    scope="--database $GATE_DATABASE"
fi

# 1. The counters as they stand: nothing is judged yet (--fail-on never).
pgradar check --dsn "app=$GATE_DSN" --save-baseline "$out/baseline.json" --fail-on never \
    --format json > "$out/before.json"

# 2. The application's tests (the command given to this script).
"$@"

# 3. Only what happened since the baseline. Exit 1: a problem at or above
#    $fail_on; exit 2: bad input, the baseline refused, or the server unreachable.
status=0
# shellcheck disable=SC2086  # $scope is two words or none
pgradar check --dsn "app=$GATE_DSN" --baseline "$out/baseline.json" $scope \
    --fail-on "$fail_on" --format junit > "$out/pgradar-junit.xml" || status=$?
# The same judgement for a person reading the job log.
# shellcheck disable=SC2086
pgradar check --dsn "app=$GATE_DSN" --baseline "$out/baseline.json" $scope --fail-on never || true
exit "$status"
