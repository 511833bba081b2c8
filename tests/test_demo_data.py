"""manage.py load_demo_data (what `make run` loads): never changes a user, a password of its own per login in a
file only its owner reads, and nothing at all for a database that has users unless asked for."""

import io
import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from courses.models import Course
from enrollments.models import LearnerProfile

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def var(tmp_path, settings, monkeypatch):
    settings.VAR_DIR = tmp_path / "var"
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    return settings.VAR_DIR


def load(*args) -> str:
    out = io.StringIO()
    call_command("load_demo_data", *args, stdout=out)
    return out.getvalue()


def saved_logins(var) -> dict[str, tuple[str, str]]:
    lines = (var / "demo-logins.txt").read_text().splitlines()
    return {name: (password, role) for name, password, role in (line.split("\t") for line in lines)}


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_demo_login_gets_its_own_password_in_a_private_file(var):
    out = load()

    logins = saved_logins(var)
    assert set(logins) == {"admin", "importer"}
    (admin_password, _), (importer_password, _) = logins["admin"], logins["importer"]
    assert admin_password != importer_password and len(admin_password) >= 16
    assert User.objects.get(username="admin").check_password(admin_password)
    assert User.objects.get(username="importer").check_password(importer_password)
    assert User.objects.get(username="importer").has_perm("lms_import.import_course_records")
    assert mode(var / "demo-logins.txt") == 0o600
    assert f"Demo logins: admin / {admin_password} (site admin), importer / {importer_password} (import staff)" in out
    assert Course.objects.filter(external_course_id__in=["CARD101", "ETH200"]).count() == 2


def test_demo_admin_password_chooses_the_admins_password_on_a_fresh_database(var, monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "chosen-Pa55word")
    load()

    assert User.objects.get(username="admin").check_password("chosen-Pa55word")
    assert not User.objects.get(username="importer").check_password("chosen-Pa55word")


def test_an_existing_user_is_never_changed(var, monkeypatch):
    admin = User.objects.create(username="admin", email="boss@example.org")  # not even staff
    admin.set_password("their-own-Pa55word")
    admin.save()
    learner = User.objects.create(username="maria.garcia@example.org", first_name="Maria")
    before = {user.pk: (user.password, user.is_staff, user.is_superuser, user.email) for user in (admin, learner)}
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "chosen-Pa55word")

    out = load()

    for user in (admin, learner):
        user.refresh_from_db()
        assert (user.password, user.is_staff, user.is_superuser, user.email) == before[user.pk]
    assert not LearnerProfile.objects.filter(user=learner).exists()
    assert set(saved_logins(var)) == {"importer"} and "admin /" not in out


def test_loading_again_changes_nothing(var):
    load()
    first = saved_logins(var)
    passwords = dict(User.objects.values_list("username", "password"))

    out = load()

    assert saved_logins(var) == first and dict(User.objects.values_list("username", "password")) == passwords
    assert "left as they are" in out


def test_make_runs_load_skips_a_database_that_has_users(var):
    User.objects.create(username="registrar")

    out = load("--if-no-users")

    assert "no demo data was loaded" in out
    assert list(User.objects.values_list("username", flat=True)) == ["registrar"]
    assert not Course.objects.exists() and not (var / "demo-logins.txt").exists()


def test_make_runs_load_fills_an_empty_database_and_then_only_repeats_the_logins(var):
    load("--if-no-users")
    logins = saved_logins(var)

    again = load("--if-no-users")

    assert set(logins) == {"admin", "importer"}
    assert "no demo data was loaded" in again and f"admin\t{logins['admin'][0]}\tsite admin" in again


def test_the_old_world_readable_login_file_is_removed_and_a_loose_file_tightened(var):
    var.mkdir(parents=True)
    (var / "demo-login.txt").write_text("shared-password")
    (var / "demo-logins.txt").write_text("")
    (var / "demo-logins.txt").chmod(0o644)

    load()

    assert not (var / "demo-login.txt").exists()
    assert mode(var / "demo-logins.txt") == 0o600 and set(saved_logins(var)) == {"admin", "importer"}
