"""Revert of a succeeded import job (SPEC §6): the superuser's confirmation page and POST."""

from django.http import Http404


def job_revert(request, pk: int):
    raise Http404("Revert is not built yet.")
