"""manage.py load_demo_data: a small catalog, learners and logins, so a new user can import at once.

It never changes a user that exists. Each demo login it creates gets a random password of its own
(DEMO_ADMIN_PASSWORD chooses the admin's), printed once and kept in var/demo-logins.txt, readable by its owner
only. With --if-no-users (what `make run` uses) it loads nothing into a database that has users already: a real
site's database gets no demo course and no demo login. Running it again changes nothing that exists.
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


# The demo logins: username, e-mail, what it may do, the fields it is created with.
LOGINS = [
    ("admin", "admin@example.org", "site admin", {"is_staff": True, "is_superuser": True}),
    ("importer", "importer@example.org", "import staff", {}),
]
IMPORT_PERMISSION = "import_course_records"
LOGINS_FILE = "demo-logins.txt"
OLD_LOGIN_FILE = "demo-login.txt"  # what earlier versions wrote, readable by everyone


class Command(BaseCommand):
    help = (
        "Load demo credit types, courses, learners and the admin/importer logins. Never changes a user that exists; "
        "each new login gets its own random password, kept in var/demo-logins.txt (mode 0600)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--if-no-users",
            action="store_true",
            help="Load nothing if the database has any user (what `make run` uses: never into a real site).",
        )

    def handle(self, *args, if_no_users: bool = False, **options) -> None:
        saved = Path(settings.VAR_DIR) / LOGINS_FILE
        (Path(settings.VAR_DIR) / OLD_LOGIN_FILE).unlink(missing_ok=True)
        if if_no_users and get_user_model().objects.exists():
            self.stdout.write("The database has users already, so no demo data was loaded (load_demo_data loads it).")
            if saved.exists():
                self.stdout.write(f"Demo logins as they were created, from {saved}:\n{saved.read_text()}")
            return
        with transaction.atomic():
            self._catalog()
            created = self._logins()
            logins = _read_logins(saved) | created
            if created:
                _write_private(
                    saved, "".join(f"{name}\t{password}\t{role}\n" for name, (password, role) in logins.items())
                )
        if created:
            listed = ", ".join(f"{name} / {password} ({role})" for name, (password, role) in created.items())
            self.stdout.write(self.style.SUCCESS(f"Demo logins: {listed}; saved in {saved} (readable by you only)."))
        else:
            self.stdout.write(f"The demo logins existed already and were left as they are (see {saved}).")

    def _catalog(self) -> None:
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
            if User.objects.filter(username=email).exists():
                continue  # never change a user that exists
            user = User(username=email, email=email, first_name=first, last_name=last)
            user.set_unusable_password()  # learners of the demo records, not logins
            user.save()
            values = dict(zip(PROFILE_FIELDS, profile, strict=True))
            LearnerProfile.objects.update_or_create(user=user, defaults={"external_user_id": external_id, **values})

    def _logins(self) -> dict[str, tuple[str, str]]:
        """Create the demo logins that do not exist; {username: (password, role)} of those created."""
        User = get_user_model()
        created = {}
        for username, email, role, fields in LOGINS:
            if User.objects.filter(username=username).exists():
                continue  # never change a user that exists: not its password, not its rights
            chosen = os.environ.get("DEMO_ADMIN_PASSWORD", "") if username == "admin" else ""
            password = chosen or secrets.token_urlsafe(12)
            user = User(username=username, email=email, **fields)
            user.set_password(password)
            user.save()
            if role == "import staff":
                user.user_permissions.add(Permission.objects.get(codename=IMPORT_PERMISSION))
            created[username] = (password, role)
        return created


def _read_logins(path: Path) -> dict[str, tuple[str, str]]:
    logins = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, password, role = (line.split("\t") + ["", ""])[:3]
            if name:
                logins[name] = (password, role)
    return logins


def _write_private(path: Path, text: str) -> None:
    """Write a file that only its owner may read (also when it exists already with a wider mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
