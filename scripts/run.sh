#!/usr/bin/env bash
# The product on one machine: migrate, demo data, then web + Celery worker + Celery beat under honcho.
# Embedded default: SQLite file and a filesystem broker under ./var (no servers needed).
# Set DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) to run on those instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DJANGO_SETTINGS_MODULE=lms_import.settings
# The inbox: files dropped in var/inbox/<course id>/ or var/inbox/_global/ are imported (Celery beat scans it).
export IMPORT_INBOX_DIR="${IMPORT_INBOX_DIR:-${LMS_VAR_DIR:-$PWD/var}/inbox}"
mkdir -p "$IMPORT_INBOX_DIR/_global" "$IMPORT_INBOX_DIR/CARD101" "$IMPORT_INBOX_DIR/ETH200"
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput >/dev/null
$PY manage.py load_demo_data
echo
echo "Open http://127.0.0.1:${WEB_PORT:-8000}/import/ and log in with the demo login above."
echo "Try samples/card101_completions.csv with the course-level importer and course CARD101,"
echo "or copy it into $IMPORT_INBOX_DIR/CARD101/. The API: http://127.0.0.1:${WEB_PORT:-8000}/api/docs/"
echo "(a token: .venv/bin/python manage.py drf_create_token admin). E-mails are printed in the worker's log."
echo
exec .venv/bin/honcho start -f Procfile
