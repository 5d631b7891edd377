#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use is running: start it if stopped, install it with apt
# if missing. Tests never skip for want of a server.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "services: installing PostgreSQL" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
if ! pg_up; then
  echo "services: starting PostgreSQL" >&2
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
fi
pg_up || { echo "services: PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
# trust auth for local TCP connections as user postgres is what the test URLs assume
psql -h 127.0.0.1 -U postgres -d postgres -qtAc 'select 1' >/dev/null
