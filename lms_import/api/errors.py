"""Every error of the API is JSON with a code: the importer's own (F_*, E_*, W_AUTO_COMPLETE, F_LOCKED…) where the
error is about the file or the job, DRF's (NOT_AUTHENTICATED, PERMISSION_DENIED, NOT_FOUND…) otherwise.

    {"code": "F_NOT_CSV", "message": "…", "errors": [{"line": null, "code": "F_NOT_CSV", "column": "file",
                                                      "value": "50 4b 03 04", "message": "…"}]}

`errors` has the same keys as the command line's (SPEC §8); a request with several wrong fields lists each.
"""

import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, NotFound, PermissionDenied, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler

from core.findings import E_VALUE_INVALID, Finding

IMPORTER_CODE = re.compile(r"^[FEW]_[A-Z_]+$")


class Refused(APIException):
    """A refusal with one of the importer's codes: a file that is not taken, a job in the wrong state, a held lock."""

    def __init__(self, finding: Finding, *, status_code: int = status.HTTP_400_BAD_REQUEST):
        self.status_code = status_code
        self.finding = finding
        super().__init__(detail=finding.message, code=finding.code)


def _findings(detail, column: str | None = None) -> list[dict]:
    if isinstance(detail, dict):
        return [
            f for key, value in detail.items() for f in _findings(value, None if key == "non_field_errors" else key)
        ]
    if isinstance(detail, list):
        return [f for item in detail for f in _findings(item, column)]
    code = getattr(detail, "code", "") or ""
    code = code if IMPORTER_CODE.match(code) else E_VALUE_INVALID
    message = str(detail) if column is None or code != E_VALUE_INVALID else f"{column}: {detail}"
    return [{"line": None, "code": code, "column": column, "value": None, "message": message}]


def exception_handler(exc, context):
    # As DRF's own handler does, so that their codes are DRF's (NOT_FOUND, PERMISSION_DENIED).
    if isinstance(exc, Http404):
        exc = NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a 500: Django's handler, logged as usual
    if isinstance(exc, Refused):
        finding = exc.finding.as_dict()
        finding = {key: finding.get(key) for key in ("line", "code", "column", "value", "message")}
        response.data = {"code": finding["code"], "message": finding["message"], "errors": [finding]}
    elif isinstance(exc, ValidationError):
        findings = _findings(exc.detail)
        response.data = {"code": findings[0]["code"], "message": findings[0]["message"], "errors": findings}
    else:
        detail = exc.detail if isinstance(exc, APIException) else response.data
        code = detail.code if isinstance(detail, ErrorDetail) else getattr(exc, "default_code", "error")
        response.data = {"code": str(code).upper(), "message": str(detail)}
    return response
