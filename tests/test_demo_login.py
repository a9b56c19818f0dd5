"""`manage.py demo_login`: the operator login and tenant key `make run` prints both work."""

import io
import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from clusters.demo import seed_inventory
from leasing.demo import seed_leasing
from leasing.management.commands.demo_login import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


@override_settings(DEBUG=True)
def test_printed_login_and_key_work(client):
    from django.utils import timezone

    seed_inventory(scale=0.01)
    seed_leasing(now=timezone.now())
    out = io.StringIO()
    call_command("demo_login", stdout=out)
    text = out.getvalue()
    password = re.search(r"password: (\S+)", text).group(1)
    assert client.login(username="operator", password=password)
    assert client.get("/operator/").status_code == 200
    key = re.search(r"Bearer (\S+)'", text).group(1)
    client.logout()
    leases = client.get("/api/v1/leases/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert leases.status_code == 200
    assert leases.json()["results"], "the demo tenant sees its leases"


@override_settings(DEBUG=False)
def test_refuses_without_debug():
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo_login", stdout=io.StringIO())


@override_settings(DEBUG=True)
def test_a_reset_demo_login_is_not_left_locked_out(client):
    call_command("demo_login", stdout=io.StringIO())
    form = {"username": "operator", "next": "/admin/"}
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {**form, "password": f"wrong-{i}"})
    assert client.post("/admin/login/", {**form, "password": DEMO_PASSWORD}).status_code == 429
    call_command("demo_login", stdout=io.StringIO())
    assert client.post("/admin/login/", {**form, "password": DEMO_PASSWORD}).status_code == 302
    assert client.get("/operator/").status_code == 200
