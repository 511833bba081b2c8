"""Revert eligibility on plain values (no database): which job, and which of its records, a revert removes."""

from datetime import UTC, datetime, timedelta

from lms_import.revert import (
    ACCOUNT_HAS_RECORDS,
    ACCOUNT_USED,
    CREDIT_ADDED,
    CREDIT_CHANGED,
    PENDING_CHANGED,
    PENDING_ENROLLMENT_KEPT,
    SHELL_CONFIGURED,
    SHELL_HAS_RECORDS,
    SHELL_NOW_COURSE,
    AwardFacts,
    account_keep_reason,
    award_keep_reason,
    enrollment_keep_reason,
    pending_keep_reason,
    revert_refusal,
    shell_keep_reason,
    unchanged,
)

T0 = datetime(2026, 9, 14, 10, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=2)


def test_only_a_succeeded_real_import_can_be_reverted_once():
    assert revert_refusal(job_id=7, status="succeeded", dry_run=False) is None
    assert "already reverted" in revert_refusal(job_id=7, status="reverted", dry_run=False, reverted_at=T0)
    assert "dry run" in revert_refusal(job_id=7, status="validated", dry_run=True)
    for status in ["uploaded", "validating", "validated", "queued", "importing", "failed", "cancelled"]:
        assert "Only a succeeded import" in revert_refusal(job_id=7, status=status, dry_run=False)


def test_a_record_is_unchanged_while_created_at_equals_updated_at():
    assert unchanged(T0, T0)
    assert not unchanged(T0, LATER)
    assert not unchanged(None, None)


def test_an_untouched_enrollment_with_its_own_credit_is_removed():
    awards = [AwardFacts(7, T0, T0), AwardFacts(7, T0, T0)]
    assert enrollment_keep_reason(job_id=7, created_at=T0, updated_at=T0, awards=awards) is None
    assert enrollment_keep_reason(job_id=7, created_at=T0, updated_at=T0, awards=[]) is None


def test_an_enrollment_changed_since_is_kept():
    reason = enrollment_keep_reason(job_id=7, created_at=T0, updated_at=LATER, awards=[])
    assert reason.startswith("changed since the import (last change 2026-09-16")


def test_an_enrollment_whose_credit_changed_or_grew_is_kept():
    changed = [AwardFacts(7, T0, LATER)]
    added = [AwardFacts(7, T0, T0), AwardFacts(None, LATER, LATER)]
    assert enrollment_keep_reason(job_id=7, created_at=T0, updated_at=T0, awards=changed) == CREDIT_CHANGED
    assert enrollment_keep_reason(job_id=7, created_at=T0, updated_at=T0, awards=added) == CREDIT_ADDED


def test_credit_on_another_enrollment_goes_unless_changed():
    assert award_keep_reason(created_at=T0, updated_at=T0) is None
    assert award_keep_reason(created_at=T0, updated_at=LATER) == CREDIT_CHANGED


def test_pending_records_waiting_or_applied_by_the_system_go():
    waiting = dict(status="pending", created_at=T0, applied_at=None, enrollment_kept=False)
    assert pending_keep_reason(updated_at=T0, **waiting) is None
    assert pending_keep_reason(updated_at=LATER, **waiting) == PENDING_CHANGED
    applied = dict(status="applied", created_at=T0, updated_at=LATER, applied_at=LATER)
    assert pending_keep_reason(enrollment_kept=False, **applied) is None
    assert pending_keep_reason(enrollment_kept=True, **applied) == PENDING_ENROLLMENT_KEPT
    edited_after = applied | {"updated_at": LATER + timedelta(hours=1)}
    assert pending_keep_reason(enrollment_kept=False, **edited_after) == PENDING_CHANGED


def test_accounts_go_only_when_unused_and_without_other_records():
    assert account_keep_reason(has_other_records=False, used=False) is None
    assert account_keep_reason(has_other_records=True, used=False) == ACCOUNT_HAS_RECORDS
    assert account_keep_reason(has_other_records=False, used=True) == ACCOUNT_USED


def test_shells_go_only_when_left_empty_and_still_shells():
    assert shell_keep_reason(kind="shell", has_other_records=False, configured=False) is None
    assert shell_keep_reason(kind="shell", has_other_records=True, configured=False) == SHELL_HAS_RECORDS
    assert shell_keep_reason(kind="shell", has_other_records=False, configured=True) == SHELL_CONFIGURED
    assert shell_keep_reason(kind="course", has_other_records=False, configured=False) == SHELL_NOW_COURSE
