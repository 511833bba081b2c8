#!/usr/bin/env bash
# The product on one machine: migrate, demo data, then web + Celery worker + Celery beat under honcho.
# Embedded default: SQLite file and a filesystem broker under ./var (no servers needed).
# Set DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) to run on those instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DJANGO_SETTINGS_MODULE=lms_import.settings
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput >/dev/null
$PY manage.py load_demo_data
echo
echo "Open http://127.0.0.1:${WEB_PORT:-8000}/import/ and log in with the demo login above."
echo "Try samples/card101_completions.csv with the course-level importer and course CARD101."
echo
exec .venv/bin/honcho start -f Procfile
