#!/usr/bin/env bash
# Make sure PostgreSQL and Redis run on 127.0.0.1 (and Chromium is installed) for the test suite.
# Installs Debian's packages when missing, starts what is down, and fails loudly when it cannot.
set -euo pipefail

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && SUDO="sudo -n" || SUDO=""
fi

apt_install() {
  say "installing Debian packages: $*"
  if ! command -v apt-get >/dev/null 2>&1; then die "apt-get not found; install $* yourself"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/tmp/lms-apt.log 2>&1 \
    || { $SUDO apt-get update >/tmp/lms-apt-update.log 2>&1 && \
         $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/tmp/lms-apt.log 2>&1; } \
    || die "could not install $* (see /tmp/lms-apt.log)"
}

# --- PostgreSQL -------------------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt_install postgresql postgresql-client
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  [ -n "$version" ] || die "no PostgreSQL cluster found under /etc/postgresql"
  say "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || die "could not start PostgreSQL"
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL does not answer on 127.0.0.1:5432"
# The suite connects as postgres/postgres over TCP: with trust auth the password is ignored; with
# Debian's default (scram/md5) it must be set once.
if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  say "setting the postgres role's password for TCP connections"
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -c "psql -Atc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null || die "could not set the postgres password"
  else
    $SUDO -u postgres psql -Atc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null || die "could not set the postgres password"
  fi
  PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null \
    || die "cannot log in to PostgreSQL as postgres on 127.0.0.1"
fi

# --- Redis ------------------------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || die "could not start Redis"
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || die "Redis does not answer on 127.0.0.1:6379"

# --- Chromium for the browser tests ---------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing; the browser tests need Debian's chromium package"

say "PostgreSQL, Redis and Chromium are ready"
