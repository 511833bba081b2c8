"""Every URL the project serves, taken from the URL resolver: who may open it, and what odd values in it do.

The authorization matrix holds what each kind of user gets from every URL; a URL that is not in it fails the
test, so a new page cannot be added without saying who may see it. The fuzz test puts NUL and other control
characters, broken UTF-8 and out-of-range numbers in every parameter of every URL: never a server error, and a
control character is always a 404.
"""

import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from enrollments.models import PendingRecord
from enrollments.services import enrollment_create
from lms_import.models import AuditEvent, ColumnMapping, ImportJob, ImportLock
from tests.conftest import make_learner

pytestmark = pytest.mark.django_db
User = get_user_model()
ROLES = ("anonymous", "plain", "learner", "staff", "superuser")


# -- the URLs, from the resolver -------------------------------------------------------------------------------
def routes() -> list[str]:
    """Every URL pattern as one route string: 'import/jobs/<int:pk>/', 'admin/^(?P<app_label>…)/$'…"""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            else:
                yield route

    return list(walk(get_resolver().url_patterns, ""))


PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def parameters(route: str) -> list[str]:
    return [a or b for a, b in PARAMETER.findall(route)]


def url_for(route: str, values: dict[str, str]) -> str:
    """The route with each parameter replaced by its (already URL-encoded) value."""
    path = PARAMETER.sub(lambda m: values[m.group(1) or m.group(2)], route)
    return "/" + path.replace("^", "").replace("$", "")


ADMIN_MODEL = re.compile(r"^admin/(\w+)/(\w+)/")


def admin_model(route: str):
    """The model of an admin page's route ('admin/courses/course/…'), or None."""
    match = ADMIN_MODEL.match(route)
    if match is None:
        return None
    try:
        return apps.get_model(match.group(1), match.group(2))
    except LookupError:
        return None


# -- one of everything -----------------------------------------------------------------------------------------
@pytest.fixture
def world(course, credit_types):
    """Users of every kind and one record of every model, so that every URL has something to show."""
    superuser = User.objects.create(username="root", email="root@example.org", is_staff=True, is_superuser=True)
    staff = User.objects.create(username="importer", email="importer@example.org")
    staff.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    plain = User.objects.create(username="plain", email="plain@example.org")
    learner = make_learner("L-1", "maria@example.org", "Maria", "Garcia")
    job = ImportJob.objects.create(
        created_by=staff, course=course, original_filename="card.csv", status="succeeded", error_count=1
    )
    job.error_report.save("errors.csv", ContentFile(b"line,code\n2,E_DATE_INVALID\n"), save=True)
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
    AuditEvent.objects.create(actor=staff, action="upload", job=job)
    ImportLock.objects.get_or_create(scope="course_records")
    Group.objects.create(name="Registrars")
    AccessAttempt.objects.create(username="x", ip_address="127.0.0.1", failures_since_start=1)
    AccessLog.objects.create(username="x", ip_address="127.0.0.1")
    AccessFailureLog.objects.create(username="x", ip_address="127.0.0.1")
    Token.objects.create(user=staff)
    ColumnMapping.objects.create(name="Registration export", columns={"complete": "Done"}, created_by=superuser)
    return {
        "users": {"plain": plain, "learner": learner, "staff": staff, "superuser": superuser},
        "job": job,
        "enrollment": enrollment,
        "course": course,
    }


def values_for(route: str, world: dict) -> dict[str, str]:
    """A value for each parameter of the route that names a record of the world."""
    model = admin_model(route)
    values = {
        "external_course_id": world["course"].external_course_id,
        "pk": str(world["enrollment"].pk if route.startswith("certificates/") else world["job"].pk),
        "object_id": str(model.objects.order_by("pk").values_list("pk", flat=True).first()) if model else "1",
        "content_type_id": str(ContentType.objects.get_for_model(type(world["course"])).pk),
        "id": str(world["users"]["plain"].pk),
        "uidb64": "MQ",
        "token": "set-password",
        "app_label": "courses",
        "url": "no-such-page/",
    }
    if route.startswith("admin/r/"):
        values["object_id"] = str(world["course"].pk)
    if route.startswith("admin/authtoken/tokenproxy/"):  # DRF's token admin finds a token by its user
        values["object_id"] = str(world["users"]["staff"].pk)
    return {name: values[name] for name in parameters(route)}


def client_as(role: str, world: dict) -> Client:
    # A server error is an answer like any other here (500), so that one test run lists them all.
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


# -- the authorization matrix ---------------------------------------------------------------------------------------
# What each role gets, in the order of ROLES: a status code, "login" (sent to /accounts/login/?next=the URL),
# "admin-login" (to /admin/login/?next=the URL) or "→/path" (another redirect).
NO_ADMIN = ["admin-login"] * 4  # anonymous, plain, learner and import staff: none of them is staff
EXPECTED = {
    "": ["→/import/"] * 5,
    # The import pages (SPEC §8): import staff and site admins; Unlock and Revert: site admins only.
    "import/": ["login", 403, 403, 200, 200],
    "import/course-records/": ["login", 403, 403, 200, 200],
    "import/course-records/history/": ["login", 403, 403, 200, 200],
    "import/course-records/holding/": ["login", 403, 403, 200, 200],
    "import/course-records/unlock/": ["login", 403, 403, 403, 200],
    "import/jobs/<int:pk>/": ["login", 403, 403, 200, 200],
    "import/jobs/<int:pk>/progress/": ["login", 403, 403, 200, 200],
    "import/jobs/<int:pk>/error-report/": ["login", 403, 403, 200, 200],
    "import/jobs/<int:pk>/mapping/": ["login", 403, 403, 200, 200],  # the mapping step (SPEC §13): import staff
    "import/jobs/<int:pk>/revert/": ["login", 403, 403, 403, 200],
    "import/jobs/<int:pk>/revert/kept.csv": ["login", 403, 403, 403, 200],
    "courses/<path:external_course_id>/import/": ["login", 403, 403, 200, 200],
    # Templates (SPEC §13): whoever may upload.
    "courses/<path:external_course_id>/import/template.csv": ["login", 403, 403, 200, 200],
    "courses/<path:external_course_id>/import/template.xlsx": ["login", 403, 403, 200, 200],
    "import/course-records/template.csv": ["login", 403, 403, 200, 200],
    "import/course-records/template.xlsx": ["login", 403, 403, 200, 200],
    # PARS: site admins and whoever may view enrollments (no role here but the superuser).
    "reports/pars/": ["login", 403, 403, 403, 200],
    "reports/pars/learners.csv": ["login", 403, 403, 403, 200],
    "reports/pars/missing.csv": ["login", 403, 403, 403, 200],
    # Certificates: the learner's own (the world's enrollment is the learner's); another's answers 404.
    "certificates/": ["login", 200, 200, 200, 200],
    "certificates/<int:pk>/": ["login", 404, 200, 404, 200],
    "certificates/<int:pk>/pdf/": ["login", 404, 200, 404, 200],
    # The API (SPEC §12): a token or a session of import staff; without one 401, with another user's 403. The
    # actions are POST only (405 once allowed); revert is for site admins. Its schema and docs: import staff too.
    "api/v1/^imports/$": [401, 403, 403, 200, 200],
    "api/v1/^imports/(?P<pk>[^/.]+)/$": [401, 403, 403, 200, 200],
    "api/v1/^imports/(?P<pk>[^/.]+)/errors/$": [401, 403, 403, 200, 200],
    "api/v1/^imports/(?P<pk>[^/.]+)/error-report/$": [401, 403, 403, 200, 200],
    "api/v1/^imports/(?P<pk>[^/.]+)/confirm/$": [401, 403, 403, 405, 405],
    "api/v1/^imports/(?P<pk>[^/.]+)/cancel/$": [401, 403, 403, 405, 405],
    "api/v1/^imports/(?P<pk>[^/.]+)/revert/$": [401, 403, 403, 403, 405],
    "api/schema/": [401, 403, 403, 200, 200],
    "api/docs/": ["login", 403, 403, 200, 200],
    # Django's own account pages.
    "accounts/login/": [200] * 5,
    "accounts/logout/": [405] * 5,  # POST only
    "accounts/password_change/": ["login", 200, 200, 200, 200],
    "accounts/password_change/done/": ["login", 200, 200, 200, 200],
    "accounts/password_reset/": [200] * 5,
    "accounts/password_reset/done/": [200] * 5,
    "accounts/reset/<uidb64>/<token>/": [200] * 5,
    "accounts/reset/done/": [200] * 5,
    # The admin: staff only (no role here is staff but the superuser).
    "admin/": [*NO_ADMIN, 200],
    "admin/login/": [200, 200, 200, 200, "→/admin/"],
    "admin/logout/": ["→/admin/"] * 4 + [405],
    "admin/password_change/": [*NO_ADMIN, 200],
    "admin/password_change/done/": [*NO_ADMIN, 200],
    "admin/autocomplete/": [*NO_ADMIN, 403],  # without its parameters
    "admin/jsi18n/": [*NO_ADMIN, 200],
    "admin/r/<path:content_type_id>/<path:object_id>/": [*NO_ADMIN, 404],  # a course has no page on the site
    "admin/^(?P<app_label>auth|axes|authtoken|credits|courses|enrollments|lms_import)/$": [*NO_ADMIN, 200],
    "admin/(?P<url>.*)$": [*NO_ADMIN, 404],
    "admin/auth/user/<id>/password/": [*NO_ADMIN, 200],
}
# Every model's admin pages, by the part of the route after admin/<app>/<model>/ (the superuser's answer).
ADMIN_MODEL_PAGES = {
    "": 200,
    "add/": 200,
    "<path:object_id>/history/": 200,
    "<path:object_id>/delete/": 200,
    "<path:object_id>/change/": 200,
    "<path:object_id>/": "→change",
    "import/": 200,  # django-import-export
    "process_import/": 405,  # POST only
    "export/": 200,
}
# Models whose records the admin does not add (or delete): they are made by the importer, the services, axes.
ADMIN_REFUSED = {
    ("axes.accessattempt", "add/"),
    ("axes.accesslog", "add/"),
    ("axes.accessfailurelog", "add/"),
    ("enrollments.pendingrecord", "add/"),
    ("lms_import.importjob", "add/"),
    ("lms_import.importjob", "<path:object_id>/delete/"),
    ("lms_import.importlock", "add/"),
    ("lms_import.importlock", "<path:object_id>/delete/"),
    ("lms_import.auditevent", "add/"),
    ("lms_import.auditevent", "<path:object_id>/delete/"),
}


def expected(route: str, url: str) -> list:
    if route in EXPECTED:
        return EXPECTED[route]
    model = admin_model(route)
    if model is None:
        return None
    label = model._meta.label_lower
    page = ADMIN_MODEL.sub("", route)
    if page not in ADMIN_MODEL_PAGES:
        return None
    answer = 403 if (label, page) in ADMIN_REFUSED else ADMIN_MODEL_PAGES[page]
    if answer == "→change":
        answer = f"→{url}change/"
    return [*NO_ADMIN, answer]


def answer(response, url: str):
    """What a response means, in the matrix's terms."""
    if response.status_code == 302:
        location = response["Location"]
        if location == f"/accounts/login/?next={quote(url)}":
            return "login"
        if location == f"/admin/login/?next={quote(url)}":
            return "admin-login"
        return f"→{location}"
    return response.status_code


def test_every_url_answers_each_role_as_the_matrix_says(world):
    clients = {role: client_as(role, world) for role in ROLES}
    missing, wrong = [], []
    for route in routes():
        url = url_for(route, values_for(route, world))
        want = expected(route, url)
        if want is None:
            missing.append(route)
            continue
        got = [answer(clients[role].get(url), url) for role in ROLES]
        if got != want:
            wrong.append(f"{route}: expected {want}, got {got}")
    assert not missing, f"URLs without a line in the authorization matrix (tests/test_urls.py): {missing}"
    assert not wrong, "\n".join(wrong)


def test_what_a_role_may_not_get_it_may_not_post_either(world):
    """A refused GET is refused as a POST too (no view lets a POST through that its page keeps out)."""
    refusals = {"login", "admin-login", 403, 404}
    checked = 0
    for route in routes():
        url = url_for(route, values_for(route, world))
        want = expected(route, url) or []
        for role, answer_to_get in zip(ROLES, want, strict=False):
            if answer_to_get in refusals:
                assert answer(client_as(role, world).post(url), url) in (answer_to_get, 405), (route, role)
                checked += 1
    assert checked > 100


def test_a_route_missing_from_the_matrix_fails_it(world):
    assert expected("import/some-new-page/", "/import/some-new-page/") is None
    assert expected("admin/courses/course/<path:object_id>/new-tool/", "/admin/courses/course/1/new-tool/") is None


# -- fuzzing every parameter ------------------------------------------------------------------------------------
# Values as they travel in a URL (percent-encoded). Control characters must give 404 wherever they are.
CONTROL = ["%00", "CARD101%00", "%00CARD101", "1%00", "%01", "%1B", "%7F", "%C2%85", "%0A", "%09"]
# Anything else may be refused or not found, but never be a server error.
ODD = [
    "9" * 30,  # beyond a 64-bit id
    "-1",
    "0",
    "%FF",  # not UTF-8
    "%ED%A0%80",  # a surrogate, as UTF-8
    "%C0%80",  # an overlong NUL
    "%EF%BF%BE",  # a noncharacter
    "%E2%80%AE",  # right-to-left override
    "x" * 3000,
    "%25",
    "..",
    "%27%20OR%201%3D1%20--",
]


@pytest.fixture
def superuser_client(world) -> Client:
    return client_as("superuser", world)


def test_control_characters_in_any_url_parameter_give_404(world, superuser_client):
    failures = []
    for route in routes():
        good = values_for(route, world)
        for name in good:
            for value in CONTROL:
                url = url_for(route, good | {name: value})
                for method in (superuser_client.get, superuser_client.post):
                    status = method(url).status_code
                    if status != 404:
                        failures.append(f"{method.__name__.upper()} {url}: {status}")
    assert not failures, "\n".join(failures)


def test_odd_values_in_any_url_parameter_never_give_a_server_error(world, superuser_client):
    failures = []
    for route in routes():
        good = values_for(route, world)
        for name in good:
            for value in ODD:
                url = url_for(route, good | {name: value})
                status = superuser_client.get(url).status_code
                if status >= 500:
                    failures.append(f"GET {url[:200]}: {status}")
    assert not failures, "\n".join(failures)


def test_control_characters_in_the_query_give_404_and_odd_values_no_server_error(world, superuser_client):
    control_failures, odd_failures = [], []
    for route in routes():
        url = url_for(route, values_for(route, world))
        for query in ("q=%00", "page=1%00", "%00=1", "errors_page=%1B", "next=/import/%0A"):
            status = superuser_client.get(f"{url}?{query}").status_code
            if status != 404:
                control_failures.append(f"{url}?{query}: {status}")
        for query in ("q=%FF", "page=99999999999999999999", "errors_page=-1", "o=9999", "activity=%E2%80%AE"):
            status = superuser_client.get(f"{url}?{query}").status_code
            if status >= 500:
                odd_failures.append(f"{url}?{query}: {status}")
    assert not control_failures, "\n".join(control_failures)
    assert not odd_failures, "\n".join(odd_failures)


def test_the_reported_url_gives_404():
    """The issue's example: a NUL after a course id used to reach PostgreSQL and end in a 500."""
    staff = User.objects.create(username="importer")
    staff.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    client = client_as("staff", {"users": {"staff": staff}})

    assert client.get("/courses/CARD101%00/import/").status_code == 404
    assert client.post("/courses/CARD101%00/import/").status_code == 404
