"""Import jobs are never deleted: a trigger refuses it, so that records may refer to their job without a
foreign-key constraint; and the records' job columns get BRIN indexes on PostgreSQL.

Every record an import writes names its job (enrollments, credit awards, learner profiles, pending records,
course shells). Checking those references as foreign keys cost about a third of the writer's constraint
checks (2.2M of 6M for a 1M-row file). Jobs are the audit trail and are never deleted, so the references
are plain columns (db_constraint=False) and this trigger keeps them valid: a job cannot go. (TRUNCATE, as a
test database's flush does, fires no row trigger.)

An import writes its records together, so the rows of one job sit in neighbouring pages: a block-range
(BRIN) index finds them (revert, the job's pages) at a fraction of a B-tree's cost to maintain, for every
record written. SQLite, which has no BRIN, keeps B-trees.
"""

from django.db import migrations

POSTGRESQL = [
    """
    CREATE FUNCTION lms_import_job_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'Import job % cannot be deleted: import jobs are the record of what was imported.', OLD.id
            USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE TRIGGER lms_import_job_never_deleted BEFORE DELETE ON lms_import_importjob
    FOR EACH ROW EXECUTE FUNCTION lms_import_job_never_deleted()
    """,
]
POSTGRESQL_UNDO = [
    "DROP TRIGGER IF EXISTS lms_import_job_never_deleted ON lms_import_importjob",
    "DROP FUNCTION IF EXISTS lms_import_job_never_deleted()",
]
SQLITE = [
    """
    CREATE TRIGGER lms_import_job_never_deleted BEFORE DELETE ON lms_import_importjob
    BEGIN
        SELECT RAISE(ABORT, 'Import jobs cannot be deleted: they are the record of what was imported.');
    END
    """
]
SQLITE_UNDO = ["DROP TRIGGER IF EXISTS lms_import_job_never_deleted"]

JOB_COLUMNS = {
    "enrollments_enrollment": "import_job_id",
    "credits_creditaward": "import_job_id",
    "enrollments_learnerprofile": "created_by_job_id",
    "enrollments_pendingrecord": "import_job_id",
    "courses_course": "created_by_job_id",
}
POSTGRESQL += [f"CREATE INDEX {table}_job_brin ON {table} USING brin ({column})" for table, column in JOB_COLUMNS.items()]
POSTGRESQL_UNDO += [f"DROP INDEX IF EXISTS {table}_job_brin" for table in JOB_COLUMNS]
SQLITE += [f"CREATE INDEX {table}_job ON {table} ({column})" for table, column in JOB_COLUMNS.items()]
SQLITE_UNDO += [f"DROP INDEX IF EXISTS {table}_job" for table in JOB_COLUMNS]


def run(statements: dict):
    def apply(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)  # as it is: the function body has a % of its own

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("lms_import", "0008_importjob_files_removed_at"),
        ("courses", "0004_job_reference_without_constraint"),
        ("credits", "0004_job_reference_without_constraint"),
        ("enrollments", "0004_job_reference_without_constraint"),
    ]

    operations = [
        migrations.RunPython(
            run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            run({"postgresql": POSTGRESQL_UNDO, "sqlite": SQLITE_UNDO}),
        ),
    ]
