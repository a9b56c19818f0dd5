"""An operator with a known password, and a login through the admin's own form (the path
django-axes counts and django-otp guards)."""

import pytest
from django.test import Client

from tests.factories.leasing import UserFactory

LOGIN = "/admin/login/"
PASSWORD = "pw-of-the-operator"


@pytest.fixture
def operator(db):
    user = UserFactory(username="op", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def admin_login(client: Client, password: str = PASSWORD, username: str = "op", **fields) -> int:
    """One login through the admin form; the status code of the answer (302: logged in)."""
    form = {"username": username, "password": password, "next": "/admin/", **fields}
    return client.post(LOGIN, form).status_code
