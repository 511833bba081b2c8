"""A pending record is applied as soon as an account with its e-mail or external id appears (SPEC §6)."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import LearnerProfile, PendingRecord
from .services import pending_records_apply


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="pending_on_user")
def apply_pending_for_new_user(sender, instance, created, raw=False, **kwargs):
    if created and not raw and PendingRecord.objects.filter(status=PendingRecord.STATUS_PENDING).exists():
        pending_records_apply(users=[instance])


@receiver(post_save, sender=LearnerProfile, dispatch_uid="pending_on_profile")
def apply_pending_for_profile(sender, instance, raw=False, **kwargs):
    if raw or not instance.external_user_id:
        return
    if PendingRecord.objects.filter(
        status=PendingRecord.STATUS_PENDING, external_user_id=instance.external_user_id
    ).exists():
        pending_records_apply(users=[instance.user])
