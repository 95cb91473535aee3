#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests on a tiny model, storage tests on SQLite and on a
# real PostgreSQL server, integration tests on the real model and a real BentoML server.
# Installs promtool (Debian package prometheus), Chromium and its driver (chromium, chromium-driver) and
# PostgreSQL (package postgresql) if missing, and
# runs PostgreSQL on a free loopback port in a temporary data folder for the length of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
apt_install() {
  $sudo_cmd apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}
command -v promtool >/dev/null 2>&1 || apt_install prometheus
# The review page's browser test drives Debian's headless Chromium through its driver.
command -v chromedriver >/dev/null 2>&1 || apt_install chromium chromium-driver

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
[ -n "$(pg_bin)" ] || apt_install postgresql || echo "PostgreSQL could not be installed: its tests will be skipped"
pg_data=""
stop_postgres() {
  if [ -n "$pg_data" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$pg_data"
  fi
}
trap stop_postgres EXIT
if [ -n "$(pg_bin)" ]; then
  # The server refuses to run as root: as root it runs as the postgres user.
  if [ "$(id -u)" -eq 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi
  pg_data=$(mktemp -d /tmp/embedloop-pg.XXXXXX)
  [ "$(id -u)" -ne 0 ] || chown postgres "$pg_data"
  pg_port=$(.venv/bin/python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  as_pg "$(pg_bin)/initdb" -D "$pg_data" -U postgres -A trust >/dev/null
  as_pg "$(pg_bin)/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w \
    -o "-p $pg_port -k $pg_data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  export EMBEDLOOP_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/postgres"
fi

.venv/bin/python -m pytest "$@"
