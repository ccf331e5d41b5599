#!/usr/bin/env bash
# The Debian packages `make test` needs beyond Python: PostgreSQL 15 and its extensions, pgbouncer,
# Prometheus and Alertmanager (the alert tests), Chromium (the status page test), buildah and
# debootstrap (the image test builds the Dockerfile), npm (scripts/fetch_postgres.py), and the peer of
# the benchmark. Run as root, it installs the missing ones with apt; otherwise, if any is missing, it
# prints one line naming the command to run first and fails. `make system` runs it; `make test` first.
set -euo pipefail

packages=(python3-venv postgresql-15 postgresql-contrib pgbouncer prometheus prometheus-alertmanager
          postgresql-15-hypopg postgresql-15-pg-qualstats
          prometheus-postgres-exporter  # the peer of the benchmark (make bench, docs/benchmark.md)
          chromium                      # the status page test runs it headless
          buildah debootstrap)          # the image test (tests/integration/test_image.py)
command -v npm >/dev/null || packages+=(npm)

if ! command -v dpkg >/dev/null; then
  echo "not a Debian system: install the equivalents of ${packages[*]} (the tests name what they miss)"
  exit 0
fi
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages (${missing[*]}): run \`sudo make system\` first" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a cluster of its own on install; the tests start their own.
if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster 15 main stop 2>/dev/null || true
fi
