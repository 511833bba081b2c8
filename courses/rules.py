"""Which course a row belongs to (SPEC §3): pure functions over plain values, no database."""

from core.findings import E_COURSE_MISMATCH, E_COURSE_MISSING, E_TITLE_MISSING, Finding, show

MISMATCH = (
    "external_course_id {value} is not the course chosen for this import ({chosen}). Remove the column, correct "
    "the id, or import this row with the course it names."
)
MISSING = (
    "external_course_id is empty. The global importer needs the course id on every row; the course-level "
    "importer takes the course chosen in the form."
)
TITLE_MISSING = (
    "Course {value} does not exist, so the global importer would create a course shell for it, but the row has "
    "no title. Add the course title to the title column."
)


def course_ref_check(*, line: int, value: str, chosen: str | None) -> list[Finding]:
    """The course-level importer takes rows without a course id or with the chosen one; the global needs one."""
    if chosen is not None:
        if value and value != chosen:
            message = MISMATCH.format(value=show(value), chosen=show(chosen))
            return [Finding(E_COURSE_MISMATCH, message, line, "external_course_id", value)]
        return []
    if not value:
        return [Finding(E_COURSE_MISSING, MISSING, line, "external_course_id", "")]
    return []


def shell_title_check(*, line: int, course_id: str, title: str) -> list[Finding]:
    if title:
        return []
    return [Finding(E_TITLE_MISSING, TITLE_MISSING.format(value=show(course_id)), line, "title", "")]
