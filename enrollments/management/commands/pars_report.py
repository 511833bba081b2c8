"""manage.py pars_report: the PARS report (SPEC §9) for scripts — counts and what was left out on the terminal,
the learner completion CSV to --output (or to standard output with --output -)."""

from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from enrollments.pars import NOT_COUNTED, OTHER_NOT_IN_FILE, pars_report


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date; use YYYY-MM-DD.", returncode=2)


def _count(n: int, noun: str) -> str:
    """'1 record', '2 records'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class Command(BaseCommand):
    help = "PARS: per ACCME activity the physician and other learner counts, and the learner completion CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--activity", metavar="ID", help="one ACCME activity ID (as text: 0012345)")
        parser.add_argument("--from", dest="date_from", metavar="DATE", help="first day of the period (YYYY-MM-DD)")
        parser.add_argument("--to", dest="date_to", metavar="DATE", help="last day of the period (YYYY-MM-DD)")
        parser.add_argument("--output", metavar="FILE", help="write the learner completion CSV here ('-': stdout)")

    def handle(self, *args, **options) -> None:
        date_from = _date(options["date_from"]) if options["date_from"] else None
        date_to = _date(options["date_to"]) if options["date_to"] else None
        if date_from and date_to and date_from > date_to:
            raise CommandError("--from is after --to.", returncode=2)
        report = pars_report(activity=options["activity"], date_from=date_from, date_to=date_to)
        if options["output"] == "-":
            self.stdout.write(report.csv_text(), ending="")
            return
        out = self.stdout
        if not report.activities:
            out.write("No course has an ACCME PARS activity ID (set it on the course in the admin).")
        for activity in report.activities:
            out.write(
                f"Activity {activity.activity_id} ({', '.join(activity.courses)}): "
                f"{_count(activity.physicians, 'physician')}, {_count(activity.others, 'other learner')}; "
                f"{_count(activity.in_file, 'completion')} in the file, {activity.missing_data} missing data."
            )
        for count, reason in report.left_out_lines:
            out.write(f"Left out: {_count(count, 'record')} {reason}")
        if report.not_counted:
            out.write(f"Not counted: {report.not_counted} {NOT_COUNTED}")
        if report.other_completions:
            out.write(f"{report.other_completions} {OTHER_NOT_IN_FILE}")
        for item in report.missing:
            c = item.completion
            out.write(
                f"Missing data: {c.learner} ({c.first_name} {c.last_name}), activity {c.activity_id}, course "
                f"{c.course}: {'; '.join(item.missing)}"
            )
        if options["output"]:
            path = Path(options["output"])
            try:
                # UTF-8 with a BOM, like the web download, so a spreadsheet shows accented names correctly.
                path.write_text(report.csv_text(), encoding="utf-8-sig", newline="")
            except OSError as error:
                raise CommandError(f"Cannot write {path}: {error.strerror}.", returncode=2)
            out.write(f"Wrote {len(report.completions)} learner completions to {path}.")
