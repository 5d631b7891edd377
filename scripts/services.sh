#!/usr/bin/env bash
# Make sure the servers the tests use are running: PostgreSQL on 127.0.0.1:5432 and NATS with
# JetStream on 127.0.0.1:4222. Each is started if stopped and installed with apt if missing.
# Tests never skip for want of a server.
set -euo pipefail

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
}

# ---- PostgreSQL ---------------------------------------------------------------------------------
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "services: installing PostgreSQL" >&2
  apt_install postgresql
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

# ---- NATS with JetStream ------------------------------------------------------------------------
NATS_BIN=/usr/sbin/nats-server
NATS_STORE=/var/lib/nats-server
NATS_LOG=/var/log/nats-server.log
# Matched by pid file, not by executable: another nats-server (a test's private one, the package's
# own service on another port) must not count as this one running.
NATS_PID=/run/jobmaster-nats-server.pid

nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }

if [ ! -x "$NATS_BIN" ]; then
  echo "services: installing nats-server" >&2
  apt_install nats-server
fi
if ! nats_up; then
  echo "services: starting nats-server with JetStream" >&2
  mkdir -p "$NATS_STORE"
  start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$NATS_PID" \
    --exec "$NATS_BIN" -- \
    -a 127.0.0.1 -p 4222 -js -sd "$NATS_STORE" -l "$NATS_LOG"
  for _ in $(seq 1 60); do nats_up && break; sleep 0.25; done
fi
nats_up || { echo "services: NATS is not reachable on 127.0.0.1:4222 (see $NATS_LOG)" >&2; exit 1; }

# ---- MariaDB ------------------------------------------------------------------------------------
# The MySQL/MariaDB backend tests connect to 127.0.0.1:3306 as root without a password.
mariadb_up() { mariadb -h 127.0.0.1 -P 3306 -u root -e 'select 1' >/dev/null 2>&1; }
mariadb_port_up() { (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; }

if [ ! -x /usr/sbin/mariadbd ]; then
  echo "services: installing MariaDB" >&2
  apt_install mariadb-server mariadb-client
fi
if ! mariadb_port_up; then
  echo "services: starting MariaDB" >&2
  install -d -o mysql -g mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 1 120); do mariadb_port_up && break; sleep 0.25; done
fi
mariadb_port_up || { echo "services: MariaDB is not reachable on 127.0.0.1:3306" >&2; exit 1; }
if ! mariadb_up; then
  # A fresh Debian install lets root in through the Unix socket only: allow passwordless TCP from
  # the loopback address as well (a test server, like PostgreSQL's trust auth above).
  echo "services: allowing MariaDB root login over TCP from 127.0.0.1" >&2
  mariadb -u root -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
    FLUSH PRIVILEGES;"
fi
for _ in $(seq 1 60); do mariadb_up && break; sleep 0.25; done
mariadb_up || { echo "services: cannot log in to MariaDB as root on 127.0.0.1:3306" >&2; exit 1; }
