"""Real-sized data for page tests, written with set-based SQL on PostgreSQL (100k learners in a few seconds).

big_activity(course, n) gives n learners with a profile, each with a completed course-level enrollment in
`course` and 1.00 AMA PRA Category 1 credit. Learner g (1..n) is shaped by arithmetic, so a test can tell
what the counts must be:
  g % 5 == 0   participant category "other" (the rest: physician)
  g % 7 == 0   no last name
  g % 11 == 0  no date of birth
  g % 13 == 0  no licensing state nor license id (and no board)
"""

from django.db import connection


def big_activity(*, course, credit_type, n: int, prefix: str = "big") -> None:
    assert connection.vendor == "postgresql", "big_activity writes with PostgreSQL's generate_series"
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                                   is_active, date_joined)
            SELECT '!', false, %(p)s || '-' || g, 'First' || g, CASE WHEN g %% 7 = 0 THEN '' ELSE 'Last' || g END,
                   %(p)s || '-' || g || '@example.org', false, true, now()
            FROM generate_series(1, %(n)s) AS g
            """,
            {"p": prefix, "n": n},
        )
        cursor.execute(
            """
            INSERT INTO enrollments_learnerprofile (user_id, external_user_id, dob_month, dob_day, licensing_state,
                                                    license_id, certifying_board, board_id)
            SELECT u.id, %(p)s || '-X' || g, CASE WHEN g %% 11 = 0 THEN '' ELSE lpad((g %% 12 + 1)::text, 2, '0') END,
                   CASE WHEN g %% 11 = 0 THEN '' ELSE lpad((g %% 28 + 1)::text, 2, '0') END,
                   CASE WHEN g %% 13 = 0 THEN '' ELSE 'CA' END, CASE WHEN g %% 13 = 0 THEN '' ELSE '00' || g END, '', ''
            FROM generate_series(1, %(n)s) AS g JOIN auth_user u ON u.username = %(p)s || '-' || g
            """,
            {"p": prefix, "n": n},
        )
        cursor.execute(
            """
            INSERT INTO enrollments_enrollment (user_id, course_id, enrollment_start, enrollment_end, complete,
                                                date_completed, attended, participant_category, source, import_job_id,
                                                created_at, updated_at)
            SELECT u.id, %(course)s, timestamptz '2026-03-01 09:00+00', NULL, true, timestamptz '2026-03-02 09:00+00',
                   NULL, CASE WHEN g %% 5 = 0 THEN 'other' ELSE 'physician' END, 'course_import', NULL, now(), now()
            FROM generate_series(1, %(n)s) AS g JOIN auth_user u ON u.username = %(p)s || '-' || g
            """,
            {"p": prefix, "n": n, "course": course.pk},
        )
        cursor.execute(
            """
            INSERT INTO credits_creditaward (enrollment_id, credit_type_id, credits, credit_expiration, source,
                                             import_job_id, created_at, updated_at)
            SELECT e.id, %(type)s, 1.00, NULL, 'course_import', NULL, now(), now()
            FROM enrollments_enrollment e JOIN auth_user u ON u.id = e.user_id
            WHERE e.course_id = %(course)s AND u.username LIKE %(like)s
            """,
            {"type": credit_type.pk, "course": course.pk, "like": prefix + "-%"},
        )
        cursor.execute("ANALYZE auth_user, enrollments_learnerprofile, enrollments_enrollment, credits_creditaward")


def expected_counts(n: int) -> dict:
    """What the PARS page must say about big_activity(n), counted the slow way."""
    physicians = [g for g in range(1, n + 1) if g % 5]
    name = sum(1 for g in physicians if g % 7 == 0)
    dob = sum(1 for g in physicians if g % 11 == 0)
    license_ = sum(1 for g in physicians if g % 13 == 0)
    missing = sum(1 for g in physicians if g % 7 == 0 or g % 11 == 0 or g % 13 == 0)
    return {
        "physicians": len(physicians),
        "others": n - len(physicians),
        "name": name,
        "dob": dob,
        "license": license_,
        "missing": missing,
        "in_file": len(physicians) - missing,
    }
