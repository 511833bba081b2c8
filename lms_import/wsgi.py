"""WSGI entry point: the web process is `lms_import.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_import.settings")

application = get_wsgi_application()
