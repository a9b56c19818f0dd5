"""Operator logins are throttled: django-axes locks a username + address pair out after
`AXES_FAILURE_LIMIT` failures for `AXES_COOLOFF_TIME`; API keys are not logins."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.test import Client, RequestFactory, override_settings

from common.access import client_ip
from leasing.api_keys import api_key_create
from tests.factories.leasing import LeaseFactory, TenantFactory, UserFactory

from .conftest import PASSWORD, admin_login

pytestmark = pytest.mark.django_db


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_the_limit_and_cool_off_are_small():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_thirty_wrong_passwords_then_the_right_one_does_not_log_in(client, operator):
    statuses = [admin_login(client, f"guess-{i}") for i in range(30)]
    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert set(statuses[5:]) == {429}  # locked out: no more password checks
    assert admin_login(client, PASSWORD) == 429
    assert not logged_in(client)
    (row,) = AccessAttempt.objects.all()
    assert (row.username, row.ip_address) == ("op", "127.0.0.1")


def test_after_the_cool_off_the_right_password_logs_in(client, operator):
    for i in range(settings.AXES_FAILURE_LIMIT):
        admin_login(client, f"guess-{i}")
    assert admin_login(client, PASSWORD) == 429
    # The cool-off passes (attempts are timed by the database row).
    AccessAttempt.objects.update(
        attempt_time=dt.datetime.now(dt.UTC) - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    )
    assert admin_login(client, PASSWORD) == 302
    assert logged_in(client)


def test_a_reset_unlocks_at_once(client, operator):
    for i in range(settings.AXES_FAILURE_LIMIT):
        admin_login(client, f"guess-{i}")
    assert admin_login(client, PASSWORD) == 429
    assert reset(username="op") == 1  # what `manage.py axes_reset_username op` does
    assert admin_login(client, PASSWORD) == 302
    assert logged_in(client)


def test_fewer_failures_than_the_limit_do_not_lock_and_success_forgets_them(client, operator):
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        admin_login(client, f"guess-{i}")
    assert admin_login(client, PASSWORD) == 302
    assert not AccessAttempt.objects.exists()  # AXES_RESET_ON_SUCCESS


def test_the_lockout_is_per_username_and_address(operator):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(settings.AXES_FAILURE_LIMIT):
        admin_login(attacker, f"guess-{i}")
    assert admin_login(attacker, PASSWORD) == 429
    # The operator at their own address is not locked out by someone else's guesses ...
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert admin_login(elsewhere, PASSWORD) == 302
    # ... nor is another operator at the attacker's address.
    other = UserFactory(username="op2", is_staff=True)
    other.set_password(PASSWORD)
    other.save()
    assert admin_login(Client(REMOTE_ADDR="203.0.113.9"), PASSWORD, username="op2") == 302


def test_the_tenant_api_is_not_a_login_and_is_never_locked_out(client, operator):
    tenant = TenantFactory()
    LeaseFactory(tenant=tenant)
    _, raw = api_key_create(tenant=tenant, name="k")
    for i in range(settings.AXES_FAILURE_LIMIT):
        admin_login(client, f"guess-{i}")
    assert admin_login(client, PASSWORD) == 429  # this address is locked out of the admin ...
    bad = client.get("/api/v1/leases/", HTTP_AUTHORIZATION="Bearer ll_wrong")
    assert bad.status_code == 401
    good = client.get("/api/v1/leases/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert good.status_code == 200  # ... and its tenant key works
    assert len(good.json()["results"]) == 1
    assert AccessAttempt.objects.get().failures_since_start == settings.AXES_FAILURE_LIMIT + 1


def test_the_test_clients_login_and_force_login_still_work(client, operator):
    assert client.login(username="op", password=PASSWORD)
    assert logged_in(client)
    fresh = Client()
    fresh.force_login(operator)
    assert logged_in(fresh)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.7", "10.0.0.1"),  # direct: the header is the client's to forge
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # forged left part ignored
        (2, "1.2.3.4, 198.51.100.7, 10.0.0.5", "198.51.100.7"),
        (2, "198.51.100.7", "10.0.0.1"),  # fewer hops than proxies: not through them
        (1, "not-an-address", "10.0.0.1"),
        (1, "", "10.0.0.1"),
    ],
)
def test_the_client_address_behind_trusted_proxies(proxies, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(TRUSTED_PROXY_COUNT=proxies):
        assert client_ip(request) == expected
