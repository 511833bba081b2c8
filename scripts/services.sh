#!/usr/bin/env bash
# Make sure PostgreSQL and Redis run on 127.0.0.1 (and Chromium and npm are installed) for the test suite.
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
installed_postgresql=0
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt_install postgresql postgresql-client
  installed_postgresql=1
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  [ -n "$version" ] || die "no PostgreSQL cluster found under /etc/postgresql"
  say "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || die "could not start PostgreSQL"
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL does not answer on 127.0.0.1:5432"
# The suite connects with TEST_DATABASE_URL (make passes it; by default the role postgres without a password):
# on trust, or with a password from the environment (in the URL, or PGPASSWORD / ~/.pgpass, which libpq reads).
# This script never sets a password: a well-known one on a superuser role is a way in. Only a cluster it has just
# installed itself (a fresh CI machine: no data to protect) is told to trust the postgres role on the loopback.
database_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lms}"
server_url="${database_url%/*}/postgres"   # the same server and role, the database that always exists
can_connect() { psql "$server_url" -Atc 'select 1' >/dev/null 2>&1; }
if ! can_connect && [ "$installed_postgresql" = 1 ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  say "trusting the postgres role on 127.0.0.1 and ::1 in the cluster just installed ($hba)"
  $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba" \
    && $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload || die "could not change $hba"
  sleep 1
fi
can_connect || die "cannot connect to PostgreSQL on 127.0.0.1 as TEST_DATABASE_URL says. Allow its role on \
trust for 127.0.0.1 in pg_hba.conf on a test machine, or give its password: PGPASSWORD=... make test, or \
make test TEST_DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1:5432/lms"

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

# --- Node.js and npm: the browser tests inject axe-core from npm (make test runs npm ci in tests/browser/) -------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
command -v npm >/dev/null 2>&1 || die "npm is missing; the browser tests need Debian's nodejs and npm packages"

say "PostgreSQL, Redis, Chromium and npm are ready"
