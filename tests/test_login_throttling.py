"""Login throttling (django-axes): repeated failures lock a username out from one address, audited once."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from lms_import.models import AuditEvent

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "a-Correct-horse-9"


def log_in(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address, follow=False
    )


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Every test here checks passwords a dozen times; the real key derivation would only slow it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def maria(db):
    user = User.objects.create(username="maria", email="maria@example.org")
    user.set_password(PASSWORD)
    user.save()
    return user


def test_repeated_failures_lock_the_login_out_and_are_audited_once(maria, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = log_in(client, "maria", "wrong")
        assert response.status_code == 200 and b"didn't match" in response.content

    locked = log_in(client, "maria", "wrong")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content and b"15 minutes" in locked.content
    # Locked out, the right password is refused too, and the page says why.
    right = log_in(client, "maria", PASSWORD)
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    log_in(client, "maria", "wrong again")

    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.LOCKOUT)
    assert event.actor == maria
    assert event.details["username"] == "maria" and event.details["ip_address"] == "203.0.113.7"
    assert event.details["failures"] == settings.AXES_FAILURE_LIMIT and event.details["cooloff_minutes"] == 15
    assert event.details["path"] == "/accounts/login/"


def test_a_lockout_holds_one_username_from_one_address(maria, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), "maria", "wrong")

    assert log_in(Client(), "maria", PASSWORD).status_code == 429
    # The same learner from another address, and another user from the same one, may still log in.
    assert log_in(Client(), "maria", PASSWORD, address="198.51.100.2").status_code == 302
    other = User.objects.create(username="james")
    other.set_password(PASSWORD)
    other.save()
    assert log_in(Client(), "james", PASSWORD).status_code == 302


def test_an_unknown_username_is_locked_out_and_audited_without_an_actor(settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = log_in(Client(), "nobody", "guess")

    assert response.status_code == 429
    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.LOCKOUT)
    assert event.actor is None and event.details["username"] == "nobody"


def test_the_admin_login_is_throttled_too(settings):
    root = User.objects.create(username="root", is_staff=True, is_superuser=True)
    root.set_password(PASSWORD)
    root.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = Client().post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 429
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LOCKOUT, actor=root).count() == 1


def test_failures_below_the_limit_do_not_keep_a_user_out(maria, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "maria", "wrong")

    assert log_in(client, "maria", PASSWORD).status_code == 302
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.LOCKOUT).exists()
