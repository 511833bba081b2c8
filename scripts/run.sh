#!/usr/bin/env bash
# The product on one machine: migrate, demo data, then web + Celery worker + Celery beat under honcho.
# Embedded default: SQLite file and a filesystem broker under ./var (no servers needed).
# Set DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) to run on those instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DJANGO_SETTINGS_MODULE=lms_import.settings
VAR_DIR="${LMS_VAR_DIR:-var}"

# The settings refuse to start without a secret key (unless DJANGO_DEBUG): without DJANGO_SECRET_KEY, this machine
# gets one of its own, made once and kept in var/secret-key, readable by you only, so logins survive a restart.
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  key_file="$VAR_DIR/secret-key"
  if [ ! -s "$key_file" ]; then
    mkdir -p "$VAR_DIR"
    (umask 077 && $PY -c 'import secrets; print(secrets.token_urlsafe(50))' >"$key_file")
  fi
  chmod 600 "$key_file"
  DJANGO_SECRET_KEY="$(cat "$key_file")"
  export DJANGO_SECRET_KEY
fi

# The inbox: files dropped in var/inbox/<course id>/ or var/inbox/_global/ are imported (Celery beat scans it).
mkdir -p "$VAR_DIR"
export IMPORT_INBOX_DIR="${IMPORT_INBOX_DIR:-$(cd "$VAR_DIR" && pwd)/inbox}"
mkdir -p "$IMPORT_INBOX_DIR/_global" "$IMPORT_INBOX_DIR/CARD101" "$IMPORT_INBOX_DIR/ETH200"
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput >/dev/null
# Demo data only into a database without users: a real site's database is never given demo logins.
$PY manage.py load_demo_data --if-no-users
echo
echo "Open http://127.0.0.1:${WEB_PORT:-8000}/import/ and log in with the demo login above."
echo "Try samples/card101_completions.csv with the course-level importer and course CARD101,"
echo "or copy it into $IMPORT_INBOX_DIR/CARD101/. The API: http://127.0.0.1:${WEB_PORT:-8000}/api/docs/"
echo "(a token: .venv/bin/python manage.py drf_create_token admin). E-mails are printed in the worker's log."
echo
exec .venv/bin/honcho start -f Procfile
