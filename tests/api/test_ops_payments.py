"""The operator payments API (`/api/ops/v1/payments/`, `/refunds/`): a finance system records,
lists, reverses and refunds with an operator key acting as its staff user (docs/api.md,
"Operator payments"; billing/ops_api/)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from billing import services
from billing.choices import InvoiceKind, InvoiceStatus
from billing.models import Application, Invoice, Payment, PaymentReversal, Posting, Refund
from common.exceptions import InvalidInput
from common.keys import hash_key
from common.models import OperatorKey
from common.operator_keys import operator_key_create, operator_key_revoke
from leasing.api_keys import api_key_create
from leasing.models import IdempotencyRecord
from tests.factories.billing import lease_with_lines
from tests.factories.leasing import TenantFactory, UserFactory

from .conftest import client_for

pytestmark = pytest.mark.django_db
URL = "/api/ops/v1/payments/"
M = Decimal("1000000.00")


@pytest.fixture(autouse=True)
def _throttle(settings):
    settings.OPS_OPERATOR_THROTTLE_RATE = "100000/min"


def staff(username: str, *groups: str, **extra):
    user = UserFactory(username=username, is_staff=True, **extra)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


def key_of(user) -> str:
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    return operator_key_create(user=user, name="erp", actor=admin)[1]


@pytest.fixture
def finance():
    return staff("fin", "finance")


@pytest.fixture
def ops(finance):
    return client_for(key_of(finance))


@pytest.fixture
def world():
    """A tenant with two full months invoiced at $1,000,000.00 each (issued on the real
    clock), the earlier one due first."""
    today = timezone.now().astimezone(dt.UTC).date()
    start = (today.replace(day=1) - dt.timedelta(days=40)).replace(day=1)
    tenant = TenantFactory(slug="lab-a")
    lease, _ = lease_with_lines(tenant=tenant, commencement_date=start, rates=(M,))
    services.billing_run()
    first, second = Invoice.objects.filter(lease=lease, kind=InvoiceKind.RENT).order_by("period")[
        :2
    ]
    assert first.total == second.total == M
    return tenant, first, second


def today() -> str:
    return timezone.now().astimezone(dt.UTC).date().isoformat()


def body(**overrides):
    return {
        "tenant": "lab-a",
        "amount": "400000.00",
        "currency": "USD",
        "value_date": today(),
        "reference": "WIRE-1",
        "method": "wire",
        **overrides,
    }


def written():
    return (
        Payment.objects.count(),
        Application.objects.count(),
        Posting.objects.count(),
        PaymentReversal.objects.count(),
        Refund.objects.count(),
    )


def test_a_payment_recorded_with_explicit_applications_names_the_keys_user(world, ops, finance):
    _, first, second = world
    reply = ops.post(
        URL,
        body(
            amount="1500000.00",
            applications=[
                {"invoice": second.number, "amount": "700000.00"},
                {"invoice": first.number, "amount": "300000.00"},
            ],
        ),
        format="json",
    )
    assert reply.status_code == 201, reply.json()
    data = reply.json()
    assert data["tenant"] == "lab-a"
    assert data["recorded_by"] == "fin"
    assert data["unapplied"] == "500000.00"
    assert [(a["invoice"]["number"], a["amount"]) for a in data["applications"]] == [
        (second.number, "700000.00"),
        (first.number, "300000.00"),
    ]
    payment = Payment.objects.get(pk=data["id"])
    assert payment.recorded_by == finance
    appliers = Application.objects.filter(payment=payment).values_list("applied_by", flat=True)
    assert set(appliers) == {finance.pk}
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == InvoiceStatus.PARTIALLY_PAID

    # Without applications: the tenant's open invoices, due earliest first.
    reply = ops.post(URL, body(amount="800000.00", reference="WIRE-2"), format="json")
    assert reply.status_code == 201
    assert [a["amount"] for a in reply.json()["applications"]] == ["700000.00", "100000.00"]
    first.refresh_from_db()
    assert first.status == InvoiceStatus.PAID
    assert first.paid_by == finance

    # List (newest first, filtered, in pages) and detail.
    listed = ops.get(URL, {"tenant": "lab-a", "page_size": 1})
    assert listed.status_code == 200
    page = listed.json()
    assert [p["reference"] for p in page["results"]] == ["WIRE-2"]
    assert ops.get(page["next"]).json()["results"][0]["reference"] == "WIRE-1"
    assert ops.get(URL, {"tenant": "nobody"}).json()["results"] == []
    assert ops.get(URL, {"reversed": "true"}).json()["results"] == []
    assert ops.get(f"{URL}{payment.pk}/").json()["id"] == payment.pk
    assert ops.get(f"{URL}999999/").status_code == 404
    assert ops.get(URL, {"colour": "red"}).json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("overrides", "status", "code", "field"),
    [
        ({"tenant": "nobody"}, 422, "unknown_tenant", None),
        ({"currency": "EUR"}, 422, "currency_mismatch", None),
        ({"amount": "-5.00"}, 400, "validation_error", "amount"),
        ({"amount": "0"}, 400, "validation_error", "amount"),
        ({"amount": "1.001"}, 400, "validation_error", "amount"),
        ({"amount": "NaN"}, 400, "validation_error", "amount"),
        ({"amount": 400000.0}, 400, "validation_error", "amount"),  # a JSON number
        ({"reference": " "}, 400, "validation_error", "reference"),
        ({"value_date": "2999-01-01"}, 400, "validation_error", "value_date"),
        ({"method": "cash"}, 400, "validation_error", "method"),
        ({"colour": "red"}, 400, "validation_error", "colour"),
    ],
)
def test_refusals_have_stable_codes_and_write_nothing(world, ops, overrides, status, code, field):
    before = written()
    reply = ops.post(URL, body(**overrides), format="json")
    assert reply.status_code == status, reply.json()
    assert reply.json()["code"] == code
    if field:
        assert field in reply.json()["extra"]["fields"]
    assert written() == before


def test_applications_are_refused_whole_when_they_ask_too_much(world, ops):
    tenant, first, second = world
    other = TenantFactory(slug="lab-b")
    lease_with_lines(tenant=other, rates=(M,))
    lease_with_lines(tenant=tenant, rates=(M,), currency="EUR")
    services.billing_run()
    theirs = Invoice.objects.filter(tenant=other).first()
    assert theirs is not None
    before = written()

    def post(*applications, amount="1000000.00"):
        apps = [{"invoice": n, "amount": a} for n, a in applications]
        return ops.post(URL, body(amount=amount, applications=apps), format="json")

    # More than the payment.
    reply = post((first.number, "600000.00"), (second.number, "600000.00"))
    assert (reply.status_code, reply.json()["code"]) == (422, "over_application")
    # More than the invoice owes.
    reply = post((first.number, "1000000.01"), amount="2000000.00")
    assert (reply.status_code, reply.json()["code"]) == (422, "over_application")
    assert reply.json()["extra"]["balances"] == {str(first.pk): "1000000.00"}
    # Another tenant's invoice, or no such number.
    reply = post((theirs.number, "1.00"))
    assert (reply.status_code, reply.json()["code"]) == (409, "invoice_not_open")
    reply = post(("INV-0000-999999", "1.00"))
    assert (reply.status_code, reply.json()["code"]) == (409, "invoice_not_open")
    # An invoice named twice, an amount too precise.
    reply = post((first.number, "1.00"), (first.number, "2.00"))
    assert reply.json()["code"] == "validation_error"
    reply = post((first.number, "1.005"))
    assert "applications[0].amount" in reply.json()["extra"]["fields"]
    # An invoice in another currency than the payment (the tenant is billed in both).
    reply = ops.post(
        URL,
        body(currency="EUR", applications=[{"invoice": first.number, "amount": "1.00"}]),
        format="json",
    )
    assert (reply.status_code, reply.json()["code"]) == (422, "currency_mismatch")
    assert written() == before


def test_a_staff_user_without_the_finance_permissions_is_refused(world):
    capacity = staff("cap", "capacity")
    client = client_for(key_of(capacity))
    before = written()
    reply = client.post(URL, body(), format="json")
    assert (reply.status_code, reply.json()["code"]) == (403, "permission_denied")
    assert client.get(URL).status_code == 403
    assert written() == before
    # A viewer reads but does not write.
    viewer = client_for(key_of(staff("view", "viewer")))
    assert viewer.get(URL).status_code == 200
    assert viewer.post(URL, body(), format="json").status_code == 403
    assert written() == before


def test_keys_of_deactivated_or_non_staff_users_and_other_keys_are_refused(world, finance):
    raw = key_of(finance)
    client = client_for(raw)
    assert client.get(URL).status_code == 200
    finance.is_active = False
    finance.save()
    reply = client.post(URL, body(), format="json")
    assert (reply.status_code, reply.json()["code"]) == (401, "authentication_failed")
    finance.is_active, finance.is_staff = True, False
    finance.save()
    assert client.get(URL).status_code == 401
    finance.is_staff = True
    finance.save()
    operator_key_revoke(key=OperatorKey.objects.get(user=finance))
    assert client.get(URL).status_code == 401
    tenant_key = api_key_create(tenant=world[0])[1]
    assert client_for(tenant_key).get(URL).status_code == 401
    assert client_for(None).get(URL).status_code == 401
    assert Payment.objects.count() == 0
    # Only the hash is stored.
    assert OperatorKey.objects.get(user=finance).key_hash == hash_key(raw)
    with pytest.raises(InvalidInput) as refused:
        operator_key_create(user=UserFactory(username="tenant-member", is_staff=False))
    assert "user" in refused.value.extra["fields"]


def test_a_retried_request_with_its_idempotency_key_records_one_payment(world, ops):
    headers = {"HTTP_IDEMPOTENCY_KEY": "erp-batch-7-line-3"}
    first = ops.post(URL, body(), format="json", **headers)
    again = ops.post(URL, body(), format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1
    other = ops.post(URL, body(amount="1.00"), format="json", **headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert Payment.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.tenant_id, record.operator.username) == (None, "fin")
    # A refusal is replayed too, and an invalid body is not remembered.
    refused = {"HTTP_IDEMPOTENCY_KEY": "erp-batch-7-line-4"}
    assert ops.post(URL, body(tenant="nobody"), format="json", **refused).status_code == 422
    assert ops.post(URL, body(tenant="nobody"), format="json", **refused).status_code == 422
    bad = {"HTTP_IDEMPOTENCY_KEY": "erp-batch-7-line-5"}
    assert ops.post(URL, body(amount="-1"), format="json", **bad).status_code == 400
    assert ops.post(URL, body(), format="json", **bad).status_code == 201
    assert Payment.objects.count() == 2


def test_a_reversal_needs_a_reason_and_records_the_keys_user(world, ops, finance):
    _, first, _ = world
    pk = ops.post(URL, body(), format="json").json()["id"]
    reverse = f"{URL}{pk}/reverse/"
    before = written()
    reply = ops.post(reverse, {"reason": ""}, format="json")
    assert (reply.status_code, reply.json()["code"]) == (400, "validation_error")
    assert "reason" in reply.json()["extra"]["fields"]
    assert ops.post(reverse, {}, format="json").status_code == 400
    assert written() == before
    reply = ops.post(reverse, {"reason": "posted to the wrong tenant"}, format="json")
    assert reply.status_code == 200, reply.json()
    assert reply.json()["reversal"]["reversed_by"] == "fin"
    assert reply.json()["unapplied"] == "0.00"
    assert PaymentReversal.objects.get(payment_id=pk).reversed_by == finance
    first.refresh_from_db()
    assert first.status == InvoiceStatus.ISSUED
    again = ops.post(reverse, {"reason": "twice"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "payment_reversed")
    assert ops.get(URL, {"reversed": "true"}).json()["results"][0]["id"] == pk
    assert ops.post(f"{URL}999999/reverse/", {"reason": "x"}, format="json").status_code == 404


def test_refunds_give_back_unapplied_money_only(world, ops, finance):
    _, first, second = world
    applications = [{"invoice": inv.number, "amount": "1000000.00"} for inv in (first, second)]
    paid = ops.post(URL, body(amount="2100000.00", applications=applications), format="json")
    assert paid.json()["unapplied"] == "100000.00"
    before = written()
    reply = ops.post(
        "/api/ops/v1/refunds/",
        {"tenant": "lab-a", "amount": "100000.01", "reference": "RF-1"},
        format="json",
    )
    assert (reply.status_code, reply.json()["code"]) == (409, "nothing_unapplied")
    assert written() == before
    reply = ops.post(
        "/api/ops/v1/refunds/",
        {"tenant": "lab-a", "amount": "100000.00", "reference": "RF-1"},
        format="json",
    )
    assert reply.status_code == 201, reply.json()
    (row,) = reply.json()
    assert (row["amount"], row["refunded_by"]) == ("100000.00", "fin")
    assert Refund.objects.get().refunded_by == finance
    assert (
        ops.get("/api/ops/v1/refunds/", {"tenant": "lab-a"}).json()["results"][0]["id"]
        == (row["id"])
    )


def test_the_ops_document_describes_payments_with_the_operator_key(client):
    doc = client.get("/api/ops/schema/?format=json").json()
    assert {"/api/ops/v1/payments/", "/api/ops/v1/payments/{id}/reverse/"} <= set(doc["paths"])
    assert "OperatorKey" in doc["components"]["securitySchemes"]
    tenant_doc = client.get("/api/schema/?format=json").json()
    assert "/api/ops/v1/payments/" not in tenant_doc["paths"]


def test_a_superuser_creates_a_key_in_the_admin_and_sees_it_once(client, finance):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    reply = client.post(
        "/admin/common/operatorkey/add/",
        {"user": finance.pk, "name": "erp", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert reply.status_code == 200
    shown = [str(m) for m in reply.context["messages"] if "ok_" in str(m)]
    assert len(shown) == 1
    raw = next(word for word in shown[0].split() if word.startswith("ok_"))
    key = OperatorKey.objects.get()
    assert (key.user, key.created_by, key.key_hash) == (finance, root, hash_key(raw))
    assert raw not in client.get(f"/admin/common/operatorkey/{key.pk}/change/").content.decode()
    assert client_for(raw).get(URL).status_code == 200
    # Finance cannot create keys: a key acts as its user.
    client.force_login(finance)
    assert client.get("/admin/common/operatorkey/add/").status_code == 403
