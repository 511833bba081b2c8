"""manage.py unlock_imports: the command-line twin of the Unlock page (audited the same way)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lms_import.selectors import import_lock_state
from lms_import.services import import_lock_unlock


class Command(BaseCommand):
    help = "Release the course record import lock (for a hung or dead import) and mark its job failed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", metavar="USERNAME", help="record the unlock as this user's")
        parser.add_argument("--reason", default="", help="why, for the audit log")
        parser.add_argument("--status", action="store_true", help="only show who holds the lock")

    def handle(self, *args, **options) -> None:
        state = import_lock_state()
        if state.held:
            heartbeat = state.heartbeat_age_seconds
            self.stdout.write(
                f"Held by job #{state.job.pk if state.job else '?'} of {state.holder_name} since "
                f"{state.acquired_at:%Y-%m-%d %H:%M:%S %Z}; last heartbeat {heartbeat:.0f} s ago "
                f"({'STALE' if state.stale else 'live'}; lease {state.lease_seconds} s)."
            )
        else:
            self.stdout.write("The import lock is free.")
        if options["status"]:
            return
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"There is no user named {options['user']!r}.", returncode=2)
        job = import_lock_unlock(user=user, reason=options["reason"] or "manage.py unlock_imports")
        if job is not None:
            self.stdout.write(f"Unlocked. Job #{job.pk} is marked failed; nothing of it was committed.")
        elif state.held:
            self.stdout.write("Unlocked.")
