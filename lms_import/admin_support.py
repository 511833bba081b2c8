"""What every admin page of the project shares: audited changes and formula-safe spreadsheets.

``AuditedAdmin``  every add, change and delete made in the admin (forms, actions) also writes an
                  AuditEvent, next to Django's own LogEntry.
``SpreadsheetAdmin`` django-import-export with the formats we allow: exports pass every cell through
                  csv_safe (django-import-export's IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT only strips a
                  leading "=" and leaves + - @ tab CR alone) and are sent with Cache-Control: no-store;
                  imports need add and change rights and are audited with their counts.
"""

import tablib
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.http import Http404
from django.utils.cache import add_never_cache_headers
from import_export import widgets
from import_export.formats import base_formats

from core.csv_safety import FORMULA_STARTS, csv_safe

from .models import AuditEvent, ImportJob

LISTED = 100  # objects named in one audit event of a bulk delete


def _job_of(obj) -> ImportJob | None:
    """The import a record came from, so that the job's audit trail shows what admins did to its records."""
    if isinstance(obj, ImportJob):
        return obj
    for name in ("import_job", "created_by_job"):
        job_id = getattr(obj, f"{name}_id", None)
        if job_id:
            return ImportJob(pk=job_id)
    return None


def _label(obj) -> str:
    return f"{obj._meta.app_label}.{obj._meta.object_name}"


def audit_admin(request, action: str, obj=None, **details) -> AuditEvent:
    """One admin change, audited (also used by admin actions that change data)."""
    if obj is not None:
        details = {"model": _label(obj), "object_id": obj.pk, "object": str(obj)[:200]} | details
    return AuditEvent.objects.create(
        actor=request.user, action=action, job=_job_of(obj) if obj else None, details=details
    )


class AuditedAdmin(admin.ModelAdmin):
    def log_addition(self, request, obj, message):
        audit_admin(request, AuditEvent.Action.ADMIN_ADD, obj, change=message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        audit_admin(request, AuditEvent.Action.ADMIN_CHANGE, obj, change=message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        objects = list(queryset)
        if len(objects) == 1:
            audit_admin(request, AuditEvent.Action.ADMIN_DELETE, objects[0])
        elif objects:
            audit_admin(
                request,
                AuditEvent.Action.ADMIN_DELETE,
                model=_label(objects[0]),
                count=len(objects),
                objects=[{"object_id": o.pk, "object": str(o)[:200]} for o in objects[:LISTED]],
            )
        return super().log_deletions(request, objects)


# -- formula-safe formats --------------------------------------------------------------------------------
def _unescape(value):
    """Undo csv_safe on a cell read back in, so that an exported catalog imports unchanged."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


class _SafeText:
    def export_data(self, dataset, **kwargs):
        safe = tablib.Dataset(headers=[csv_safe(h) for h in dataset.headers or []])
        for row in dataset:
            safe.append([csv_safe(cell) for cell in row])
        return safe.export(self.get_title(), **kwargs)

    def create_dataset(self, in_stream, **kwargs):
        dataset = super().create_dataset(in_stream, **kwargs)
        unescaped = tablib.Dataset(headers=dataset.headers)
        for row in dataset:
            unescaped.append([_unescape(cell) for cell in row])
        return unescaped


class SafeCSV(_SafeText, base_formats.CSV):
    """CSV whose cells never start a spreadsheet formula (=, +, -, @, tab, CR get a leading apostrophe)."""


class SafeTSV(_SafeText, base_formats.TSV):
    """TSV, formula-safe like SafeCSV."""


SPREADSHEET_FORMATS = [SafeCSV, SafeTSV]


class SpreadsheetAdmin(AuditedAdmin):
    """Mixed in before an import_export admin class: our formats, real permissions, audited imports."""

    formats = SPREADSHEET_FORMATS
    import_formats = SPREADSHEET_FORMATS
    export_formats = SPREADSHEET_FORMATS

    def has_import_permission(self, request) -> bool:
        # django-import-export lets anyone who reaches the changelist import; importing adds and changes rows.
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def get_export_queryset(self, request):
        # The export page filters like the changelist, from the query string; a filter that names no field (a
        # hand-made URL) made django-import-export fail with a server error. Nothing to export: not found.
        try:
            return super().get_export_queryset(request)
        except IncorrectLookupParameters:
            raise Http404("The export's filters name no field of this list.")

    def _do_file_export(self, file_format, request, queryset, export_form=None):
        # Every export file (the export page's and the "Export selected" action's) is made here. Learners'
        # records: no copy may stay in a browser's or proxy's cache.
        response = super()._do_file_export(file_format, request, queryset, export_form=export_form)
        add_never_cache_headers(response)
        return response

    def process_result(self, result, request):
        response = super().process_result(result, request)
        totals = {kind: count for kind, count in result.totals.items() if count}
        audit_admin(
            request,
            AuditEvent.Action.ADMIN_IMPORT,
            model=f"{self.model._meta.app_label}.{self.model._meta.object_name}",
            totals=totals,
        )
        return response


class StrictBooleanWidget(widgets.BooleanWidget):
    """1/0, yes/no, true/false in any case; anything else is a row error (the stock widget reads it as False)."""

    TRUE_TEXT = frozenset({"1", "yes", "y", "true"})
    FALSE_TEXT = frozenset({"0", "no", "n", "false"})

    def clean(self, value, row=None, **kwargs):
        if value in self.NULL_VALUES:
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in self.TRUE_TEXT:
            return True
        if text in self.FALSE_TEXT:
            return False
        raise ValueError(f"{value!r} is not 1 or 0 (yes/no and true/false are accepted too).")
