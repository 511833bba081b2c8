"""What the pages say of a job, for templates that show many jobs (History, the import home)."""

from django import template

from lms_import.models import ImportJob
from lms_import.selectors import StatusDisplay, job_status_display

register = template.Library()


@register.filter
def status_display(job: ImportJob) -> StatusDisplay:
    """{% with shown=job|status_display %}: the label and tone the status badge shows (selectors)."""
    return job_status_display(job=job)
