"""A second factor for staff (django-otp): required where `OTP_REQUIRED` (production settings,
see tests/test_settings.py), offered but not required in development and the demo."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from .conftest import LOGIN, admin_login

pytestmark = pytest.mark.django_db


def token(device: TOTPDevice) -> str:
    """The code the operator's authenticator app shows now."""
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{code:0{device.digits}d}"


def can_use_the_operator_ui(client: Client) -> bool:
    pages = [client.get("/admin/"), client.get(reverse("operator:dashboard"))]
    return all(page.status_code == 200 for page in pages)


@override_settings(OTP_REQUIRED=True)
def test_without_a_verified_device_staff_cannot_use_the_admin(client, operator):
    device = TOTPDevice.objects.create(user=operator, name="phone")
    assert "otp_token" in client.get(LOGIN).content.decode()
    assert admin_login(client) == 200  # the password alone: the form again
    assert not can_use_the_operator_ui(client)
    wrong = f"{(int(token(device)) + 1) % 10**6:06d}"
    assert admin_login(client, otp_device=device.persistent_id, otp_token=wrong) == 200
    assert not can_use_the_operator_ui(client)
    # A session opened by the password alone (any other way in) is not staff either.
    password_only = Client()
    password_only.force_login(operator)
    response = password_only.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert password_only.get(reverse("operator:dashboard")).status_code == 302


@override_settings(OTP_REQUIRED=True)
def test_with_a_totp_code_staff_can(client, operator):
    device = TOTPDevice.objects.create(user=operator, name="phone")
    # django-otp asks which device answers (its form lists them once the password is right).
    assert admin_login(client, otp_device=device.persistent_id, otp_token=token(device)) == 302
    assert can_use_the_operator_ui(client)


@override_settings(OTP_REQUIRED=True)
def test_a_user_without_any_device_cannot_admin_login(client, operator):
    assert admin_login(client) == 200
    assert admin_login(client, otp_token="123456") == 200
    assert not can_use_the_operator_ui(client)


@override_settings(OTP_REQUIRED=True)
def test_the_first_superuser_starts_with_a_one_time_static_code(client, operator):
    out = io.StringIO()
    call_command("addstatictoken", "op", stdout=out)
    code = out.getvalue().strip()
    device = StaticDevice.objects.get(user=operator).persistent_id
    assert admin_login(client, otp_device=device, otp_token=code) == 302
    assert can_use_the_operator_ui(client)
    again = Client()
    assert admin_login(again, otp_device=device, otp_token=code) == 200  # used once, gone


def test_development_offers_totp_without_requiring_it(client, operator):
    assert "otp_token" not in client.get(LOGIN).content.decode()
    assert admin_login(client) == 302
    assert can_use_the_operator_ui(client)
    add = client.post(
        reverse("admin:otp_totp_totpdevice_add"),
        {
            "user": operator.pk,
            "name": "phone",
            "confirmed": "on",
            "key": "3132333435363738393031323334353637383930",
            "step": 30,
            "t0": 0,
            "digits": 6,
            "tolerance": 1,
            "drift": 0,
            "throttling_failure_count": 0,
        },
    )
    assert add.status_code == 302, add.content.decode()[:2000]
    device = TOTPDevice.objects.get(user=operator)
    qr = client.get(reverse("admin:otp_totp_totpdevice_qrcode", args=[device.pk]))
    assert qr.status_code == 200
    assert qr["Content-Type"] == "image/svg+xml"
