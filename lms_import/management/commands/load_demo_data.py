"""manage.py load_demo_data: a small catalog, learners and logins, so a new user can import at once.

Idempotent: running it again changes nothing that exists.
"""

import os
import secrets
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditType
from enrollments.models import PROFILE_FIELDS, LearnerProfile

CREDIT_TYPES = [
    ("ama_pra_1", "AMA PRA Category 1 Credit™", "credits"),
    ("ancc", "ANCC Contact Hours", "hours"),
    ("acpe", "ACPE Contact Hours", "hours"),
    ("abim_moc", "ABIM MOC Points", "points"),
]
LEARNERS = [
    ("L-0001", "maria.garcia@example.org", "Maria", "Garcia", ("04", "09", "CA", "0045123", "ABIM", "0981")),
    ("L-0002", "james.chen@example.org", "James", "Chen", ("11", "23", "NY", "1234567890", "", "")),
    ("L-0003", "aisha.okafor@example.org", "Aisha", "Okafor", ("", "", "", "", "", "")),
]


class Command(BaseCommand):
    help = "Load demo credit types, courses, learners and the admin/staff logins (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        types = {}
        for machine_name, name, unit in CREDIT_TYPES:
            types[machine_name], _ = CreditType.objects.get_or_create(
                machine_name=machine_name, defaults={"name": name, "unit": unit}
            )

        cardiology, created = Course.objects.get_or_create(
            external_course_id="CARD101",
            defaults={
                "title": "Cardiology Update 2026",
                "pars_activity_id": "0012345",
                "certificate_enabled": True,
            },
        )
        if created:
            CourseObject.objects.create(course=cardiology, title="Pre-test", kind="pre_test", required=False)
            CourseObject.objects.create(course=cardiology, title="Evaluation", kind="evaluation", required=True)
            CourseObject.objects.create(course=cardiology, title="Claim credit", kind="credit_claim", required=True)
            CourseCredit.objects.create(
                course=cardiology, credit_type=types["ama_pra_1"], max_credits=Decimal("2.00"), variable=True
            )
            CourseCredit.objects.create(
                course=cardiology, credit_type=types["ancc"], max_credits=Decimal("2.00"), variable=False
            )
            CourseCredit.objects.create(
                course=cardiology,
                credit_type=types["abim_moc"],
                max_credits=Decimal("2.00"),
                variable=True,
                increment=Decimal("0.50"),
            )
        ethics, created = Course.objects.get_or_create(
            external_course_id="ETH200",
            defaults={
                "title": "Medical Ethics Grand Rounds",
                "pars_activity_id": "0099001",
                "certificate_enabled": True,
            },
        )
        if created:  # deliberately no course objects: the completion engine completes on enrollment
            CourseCredit.objects.create(course=ethics, credit_type=types["ama_pra_1"], max_credits=Decimal("1.00"))

        User = get_user_model()
        for external_id, email, first, last, profile in LEARNERS:
            user, created = User.objects.get_or_create(
                username=email, defaults={"email": email, "first_name": first, "last_name": last}
            )
            if created:
                user.set_unusable_password()
                user.save()
                values = dict(zip(PROFILE_FIELDS, profile, strict=True))
                LearnerProfile.objects.update_or_create(user=user, defaults={"external_user_id": external_id, **values})

        # The generated password is kept in var/ (git-ignored) so that every run can print the login.
        saved = Path(settings.VAR_DIR) / "demo-login.txt"
        password = os.environ.get("DEMO_ADMIN_PASSWORD") or (saved.read_text().strip() if saved.exists() else "")
        password = password or secrets.token_urlsafe(9)
        admin, created = User.objects.get_or_create(
            username="admin", defaults={"email": "admin@example.org", "is_staff": True, "is_superuser": True}
        )
        staff, _ = User.objects.get_or_create(username="importer", defaults={"email": "importer@example.org"})
        if created or not admin.check_password(password):
            admin.set_password(password)
            admin.save()
            staff.set_password(password)
            staff.save()
        staff.user_permissions.add(Permission.objects.get(codename="import_course_records"))
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(password)
        self.stdout.write(
            self.style.SUCCESS(f"Demo logins: admin / {password} (site admin), importer / {password} (import staff)")
        )
