"""Receivers that write the audit log for events raised outside the import services."""

from datetime import timedelta

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from .models import AuditEvent


@receiver(user_locked_out, dispatch_uid="lms_import.audit_login_lockout")
def audit_login_lockout(sender, request: HttpRequest, username: str | None, ip_address: str | None, **kwargs) -> None:
    """One AuditEvent per lockout: django-axes signals every refused try while it lasts, the log needs the first."""
    username = (username or "")[:150]
    cooloff: timedelta = settings.AXES_COOLOFF_TIME
    recent = AuditEvent.objects.filter(
        action=AuditEvent.Action.LOCKOUT,
        at__gte=timezone.now() - cooloff,
        details__username=username,
        details__ip_address=ip_address,
    )
    if recent.exists():
        return
    User = get_user_model()
    AuditEvent.objects.create(
        actor=User.objects.filter(**{User.USERNAME_FIELD: username}).first() if username else None,
        action=AuditEvent.Action.LOCKOUT,
        details={
            "username": username,
            "ip_address": ip_address,
            "failures": getattr(request, "axes_failures_since_start", None),
            "path": request.path[:200],
            "cooloff_minutes": int(cooloff.total_seconds() // 60),
        },
    )
