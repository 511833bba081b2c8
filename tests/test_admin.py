"""The Django admin: a page for every model, the catalog set up from spreadsheets, formula-safe exports, audit."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, reverse

from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditAward
from enrollments.models import Enrollment, LearnerProfile, PendingRecord
from enrollments.services import enrollment_create
from lms_import.admin_support import SafeCSV, StrictBooleanWidget, _unescape
from lms_import.models import AuditEvent, ImportJob

pytestmark = pytest.mark.django_db
User = get_user_model()

MODELS = [
    ("courses", "course"),
    ("courses", "courseobject"),
    ("courses", "coursecredit"),
    ("credits", "credittype"),
    ("credits", "creditaward"),
    ("enrollments", "enrollment"),
    ("enrollments", "pendingrecord"),
    ("enrollments", "learnerprofile"),
    ("lms_import", "importjob"),
    ("lms_import", "importlock"),
    ("lms_import", "auditevent"),
]


@pytest.fixture
def root(client):
    user = User.objects.create(username="root", email="root@example.org", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def records(course, learner, credit_types):
    """One of each record, so every admin page has a row to show."""
    job = ImportJob.objects.create(original_filename="card.csv", status="succeeded", course=course)
    enrollment = enrollment_create(
        user=learner,
        course=course,
        complete=True,
        date_completed=datetime(2026, 9, 14, tzinfo=UTC),
        participant_category="physician",
        awards={credit_types["ama_pra_1"].pk: (Decimal("2.00"), None)},
        source="course_import",
        import_job=job,
    )
    PendingRecord.objects.create(line=2, email="noor@example.org", course=course, import_job=job)
    AuditEvent.objects.create(action="apply", job=job)
    return {"job": job, "enrollment": enrollment}


def import_file(client, model: str, text: str, name: str = "catalog.csv"):
    """The admin's two steps: upload (a preview), then confirm. Returns (preview, confirmed) responses."""
    app = {"course": "courses", "courseobject": "courses", "coursecredit": "courses", "credittype": "credits"}[model]
    upload = SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")
    preview = client.post(
        reverse(f"admin:{app}_{model}_import"), {"resource": "0", "format": "0", "import_file": upload}
    )
    form = preview.context.get("confirm_form") if preview.context else None
    if form is None:
        return preview, None
    confirmed = client.post(reverse(f"admin:{app}_{model}_process_import"), form.initial, follow=True)
    return preview, confirmed


def export_csv(client, app: str, model: str) -> list[list[str]]:
    url = reverse(f"admin:{app}_{model}_export")
    form = client.get(url).context["form"]
    data = {"resource": "0", "format": "0"}
    data |= {name: "on" for name, field in form.fields.items() if getattr(field, "is_selectable_field", False)}
    response = client.post(url, data)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


# -- a page for every model ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("app", "model"), MODELS)
def test_every_model_has_a_working_admin_list_and_detail(app, model, records, root, client):
    listing = client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert listing.status_code == 200
    assert client.get(reverse(f"admin:{app}_{model}_changelist"), {"q": "CARD"}).status_code == 200
    obj = client.get(reverse(f"admin:{app}_{model}_changelist")).context["cl"].result_list[0]
    detail = client.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
    assert detail.status_code == 200


@pytest.mark.parametrize(
    ("app", "model"), [("lms_import", "importjob"), ("lms_import", "importlock"), ("lms_import", "auditevent")]
)
def test_jobs_lock_and_audit_log_are_read_only(app, model, records, root, client):
    obj = client.get(reverse(f"admin:{app}_{model}_changelist")).context["cl"].result_list[0]
    assert client.get(reverse(f"admin:{app}_{model}_add")).status_code == 403
    assert client.post(reverse(f"admin:{app}_{model}_change", args=[obj.pk]), {}).status_code == 403
    assert client.post(reverse(f"admin:{app}_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_the_admin_offers_no_way_to_apply_or_change_a_job(records, root, client):
    """Jobs change only through lms_import.services; the admin shows them and links to their page."""
    dry = ImportJob.objects.create(original_filename="dry.csv", status="validated", dry_run=True, rows_valid=1)
    change = reverse("admin:lms_import_importjob_change", args=[dry.pk])

    listing = client.get(reverse("admin:lms_import_importjob_changelist"))
    page = client.get(change).content.decode()

    assert listing.context["action_form"] is None  # no bulk actions at all
    assert 'name="_save"' not in page and 'name="_continue"' not in page and "Revert import" not in page
    assert f'href="/import/jobs/{dry.pk}/"' in page
    assert client.post(change, {"status": "queued", "dry_run": ""}).status_code == 403
    assert ImportJob.objects.get(pk=dry.pk).status == "validated"


def test_course_list_counts_required_steps_and_enrollments(records, root, client):
    CourseObject.objects.create(course=Course.objects.get(external_course_id="CARD101"), title="Quiz", required=False)

    course = client.get(reverse("admin:courses_course_changelist")).context["cl"].result_list[0]

    assert (course.required_total, course.enrollment_total) == (1, 1)


def test_the_job_page_links_to_the_job_and_its_revert(records, root, client):
    job = records["job"]
    page = client.get(reverse("admin:lms_import_importjob_change", args=[job.pk])).content.decode()
    assert f'href="/import/jobs/{job.pk}/"' in page and f'href="/import/jobs/{job.pk}/revert/"' in page


# -- the catalog from a spreadsheet --------------------------------------------------------------------------
def test_a_site_catalog_is_set_up_from_spreadsheets(root, client):
    _, done = import_file(client, "credittype", "machine_name,name,unit\nama_pra_1,AMA PRA Category 1 Credit,credits\n")
    assert done.status_code == 200
    _, done = import_file(
        client,
        "course",
        "external_course_id,title,kind,pars_activity_id,certificate_enabled\n"
        "CARD101,Cardiology Update,course,0012345,1\nETH200,Ethics,course,,0\n",
    )
    assert done.status_code == 200
    import_file(
        client,
        "courseobject",
        "external_course_id,title,kind,required,position\nCARD101,Claim credit,credit_claim,yes,1\n",
    )
    import_file(
        client,
        "coursecredit",
        "external_course_id,credit_type,max_credits,variable,increment\nCARD101,ama_pra_1,2.00,1,0.25\n",
    )

    card = Course.objects.get(external_course_id="CARD101")
    assert card.pars_activity_id == "0012345" and card.certificate_enabled and card.kind == "course"
    assert CourseObject.objects.get(course=card).required
    offer = CourseCredit.objects.get(course=card)
    assert offer.credit_type.machine_name == "ama_pra_1" and offer.max_credits == Decimal("2.00") and offer.variable
    imports = AuditEvent.objects.filter(action="admin_import", actor=root).order_by("id")
    assert [e.details["model"] for e in imports] == [
        "credits.CreditType",
        "courses.Course",
        "courses.CourseObject",
        "courses.CourseCredit",
    ]
    assert imports[1].details["totals"] == {"new": 2}


def test_reimporting_updates_by_natural_key(course, root, client):
    import_file(
        client,
        "course",
        "external_course_id,title,kind,pars_activity_id,certificate_enabled\nCARD101,Renamed,course,0012345,1\n",
    )
    course.refresh_from_db()
    assert course.title == "Renamed" and Course.objects.count() == 1


def test_bad_catalog_rows_are_refused_with_the_reason(course, credit_types, root, client):
    shell = Course.objects.create(external_course_id="OLD-1", title="Old", kind="shell")

    preview, confirmed = import_file(
        client,
        "course",
        "external_course_id,title,kind,pars_activity_id,certificate_enabled\nOLD-2,Old,shell,,1\nNEW,New,course,,maybe\n",
    )
    text = preview.content.decode()
    assert confirmed is None
    assert "Course shells never have certificates." in text and "is not 1 or 0" in text

    preview, confirmed = import_file(
        client,
        "coursecredit",
        "external_course_id,credit_type,max_credits,variable,increment\nOLD-1,ancc,1.00,0,0.25\n",
    )
    assert confirmed is None and "Course shells offer no credit" in preview.content.decode()
    assert not Course.objects.filter(external_course_id__in=["OLD-2", "NEW"]).exists()
    assert not CourseCredit.objects.filter(course=shell).exists()


def test_course_records_cannot_be_imported_in_the_admin(root, client):
    for name in ["enrollments_enrollment_import", "credits_creditaward_import", "enrollments_pendingrecord_import"]:
        with pytest.raises(NoReverseMatch):
            reverse(f"admin:{name}")
    assert client.get("/admin/enrollments/enrollment/import/").status_code in (302, 404)


def test_importing_needs_add_and_change_rights(course, client):
    viewer = User.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_course"))
    client.force_login(viewer)
    assert client.get(reverse("admin:courses_course_changelist")).status_code == 200
    assert client.get(reverse("admin:courses_course_import")).status_code == 403
    assert client.get(reverse("admin:courses_course_export")).status_code == 200


# -- exports -------------------------------------------------------------------------------------------------
def test_exports_are_formula_safe_and_keep_leading_zeros(root, client, credit_types):
    Course.objects.create(external_course_id="=cmd|' /C calc'!A0", title="+SUM(A1:A9)", pars_activity_id="0012345")
    Course.objects.create(external_course_id="SAFE", title="@risk\tand -1", pars_activity_id="")

    rows = export_csv(client, "courses", "course")

    assert rows[0] == ["external_course_id", "title", "kind", "pars_activity_id", "certificate_enabled"]
    assert ["'=cmd|' /C calc'!A0", "'+SUM(A1:A9)", "course", "0012345", "0"] in rows
    assert ["SAFE", "'@risk\tand -1", "course", "", "0"] in rows


def test_exported_catalog_imports_back_unchanged(root, client, credit_types):
    Course.objects.create(external_course_id="C-1", title="=Not a formula", pars_activity_id="0099")
    text = "\n".join(",".join(f'"{c}"' for c in row) for row in export_csv(client, "courses", "course"))
    Course.objects.all().delete()

    import_file(client, "course", text)

    assert Course.objects.get(external_course_id="C-1").title == "=Not a formula"


def test_enrollments_and_credit_awards_export(records, root, client):
    LearnerProfile.objects.filter(external_user_id="L-1").update(external_user_id="@L-1")

    enrollments = export_csv(client, "enrollments", "enrollment")
    awards = export_csv(client, "credits", "creditaward")

    head, row = enrollments[0], enrollments[1]
    assert head[:8] == ["id", "username", "external_user_id", "external_email", "first_name", "last_name",
                        "external_course_id", "title"]  # fmt: skip
    record = dict(zip(head, row, strict=True))
    assert record["external_user_id"] == "'@L-1" and record["external_course_id"] == "CARD101"
    assert record["source"] == "course_import" and record["import_job"] == str(records["job"].pk)
    award = dict(zip(awards[0], awards[1], strict=True))
    assert award["credit_type"] == "ama_pra_1" and award["credits"] == "2.00" and award["external_user_id"] == "'@L-1"


def test_safe_format_and_strict_booleans_on_plain_values():
    import tablib

    data = tablib.Dataset(["=1+1", "-2", "ok", "\rx"], headers=["a", "b", "c", "d"])
    assert list(csv.reader(io.StringIO(SafeCSV().export_data(data))))[1] == ["'=1+1", "'-2", "ok", "'\rx"]
    assert _unescape("'=1+1") == "=1+1" and _unescape("'plain") == "'plain"
    widget = StrictBooleanWidget()
    assert widget.clean("Yes") is True and widget.clean("0") is False and widget.clean("") is None
    with pytest.raises(ValueError):
        widget.clean("maybe")


# -- changes in the admin are audited ------------------------------------------------------------------------
def test_changes_made_in_the_admin_are_audited(records, root, client, course):
    enrollment = records["enrollment"]
    url = reverse("admin:enrollments_enrollment_change", args=[enrollment.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data |= {
        "attended": "true",
        "participant_category": "physician",
        "date_completed_0": "2026-09-15",
        "date_completed_1": "00:00:00",
        "credit_awards-TOTAL_FORMS": "1",
        "credit_awards-INITIAL_FORMS": "1",
        "credit_awards-0-id": str(enrollment.credit_awards.get().pk),
        "credit_awards-0-enrollment": str(enrollment.pk),
        "credit_awards-0-credit_type": str(enrollment.credit_awards.get().credit_type_id),
        "credit_awards-0-credits": "2.00",
    }
    data = {k: v for k, v in data.items() if k not in ("date_completed", "enrollment_start", "enrollment_end")}

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    enrollment.refresh_from_db()
    assert enrollment.attended and enrollment.updated_at != enrollment.created_at  # a revert now keeps it
    event = AuditEvent.objects.get(action="admin_change")
    assert event.actor == root and event.job == records["job"]
    assert event.details["model"] == "enrollments.Enrollment" and event.details["object_id"] == enrollment.pk

    other = Course.objects.create(external_course_id="GONE", title="Gone")
    client.post(
        reverse("admin:courses_course_changelist"),
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )
    assert not Course.objects.filter(pk=other.pk).exists()
    deleted = AuditEvent.objects.get(action="admin_delete")
    assert deleted.details["object"] == "Gone (GONE)" and deleted.actor == root


def test_adding_an_enrollment_in_the_admin_goes_through_the_completion_engine(auto_course, learner, root, client):
    response = client.post(
        reverse("admin:enrollments_enrollment_add"),
        {"user": learner.pk, "course": auto_course.pk, "participant_category": "other", "attended": "unknown"},
    )

    assert response.status_code == 302
    enrollment = Enrollment.objects.get(user=learner, course=auto_course)
    assert enrollment.complete and enrollment.source == "native"
    assert {a.credit_type.machine_name for a in CreditAward.objects.filter(enrollment=enrollment)} == {
        "ama_pra_1",
        "ancc",
    }
    assert AuditEvent.objects.filter(action="admin_add", details__object_id=enrollment.pk).exists()


def test_pending_rows_can_be_applied_to_existing_accounts_audited(course, root, client):
    noor = User.objects.create(username="noor", email="Noor@Example.org")
    typo = PendingRecord.objects.create(line=2, email="noor@example.og", course=course, complete=False)
    PendingRecord.objects.filter(pk=typo.pk).update(email="noor@example.org")  # the admin corrected the address

    client.post(
        reverse("admin:enrollments_pendingrecord_changelist"),
        {"action": "apply_to_accounts", "_selected_action": [typo.pk]},
    )

    assert PendingRecord.objects.get(pk=typo.pk).status == "applied"
    assert Enrollment.objects.filter(user=noor, course=course).exists()
    event = AuditEvent.objects.get(action="admin_change")
    assert event.details["admin_action"] == "apply_to_accounts" and event.details["applied"] == 1


def test_shells_take_no_steps_or_credit_in_the_admin(credit_types, root, client):
    shell = Course.objects.create(external_course_id="OLD-1", title="Old", kind="shell")
    response = client.post(
        reverse("admin:courses_coursecredit_add"),
        {"course": shell.pk, "credit_type": credit_types["ancc"].pk, "max_credits": "1.00", "increment": "0.25"},
    )
    assert response.status_code == 200 and "Course shells offer no credit" in response.content.decode()
    assert not CourseCredit.objects.exists()
