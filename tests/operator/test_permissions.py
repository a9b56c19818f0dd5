"""Operator pages and admin actions check Django permissions, not just staff status.

The URLs are walked from the project's URLconf (everything under /operator/, and every admin
URL whose view is the project's own code), so a page added later is checked without editing
this file. Roles are the groups created by migration (docs/rules/roles.md).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory
from django.urls import URLPattern, reverse

from billing import services as billing
from billing.choices import InvoiceStatus
from billing.models import AvailabilityReport, Invoice
from billing.service_credits import service_credit_run
from clusters.models import Node
from leasing.api_keys import api_key_create
from leasing.models import Notice
from reclaim.choices import ReclaimStatus
from reclaim.services import decision_create
from tests.factories.billing import lease_with_lines
from tests.factories.leasing import UserFactory
from tests.operator.pages import PROJECT, operator_urls
from tests.reclaim.conftest import CHEAP, DEAR, SMALL_WORKLOAD, make_lease

pytestmark = pytest.mark.django_db

ROLES = ("capacity", "finance", "planner", "viewer")
APPROVE = "reclaim.approve_reclaimdecision"


def test_the_walk_finds_the_operator_pages_and_each_declares_its_permissions():
    names = {name for name, _ in operator_urls()}
    assert {
        "operator:dashboard",
        "operator:capacity",
        "operator:capacity-cluster",
        "operator:reclaim:approve",
        "billing:revenue",
        "billing:invoice_print",
        "admin:leasing_capacity",
        "admin:leasing_capacity_cluster",
    } <= names
    undeclared = [
        name for name, p in operator_urls() if not hasattr(p.callback, "operator_permissions")
    ]
    assert undeclared == [], "decorate these views with common.access.operator_page"


@pytest.fixture
def world():
    """A cluster, a billed lease (an invoice), and a scored decision on a running lease."""
    today = dt.datetime.now(dt.UTC).date()
    _, lines = make_lease((CHEAP, DEAR), commencement_date=today - dt.timedelta(days=10))
    decision = decision_create(
        title="take back",
        lines=lines,
        notice_date=today + dt.timedelta(days=1),
        workload=SMALL_WORKLOAD,
    )
    lease_with_lines(commencement_date=dt.date(2026, 1, 1))
    billing.billing_run(now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    invoice = Invoice.objects.first()
    service_credit_run(now=dt.datetime(2026, 2, 2, tzinfo=dt.UTC))  # January's report
    cluster = lines[0].cluster
    by_name = {
        "billing:invoice_print": {"pk": invoice.pk},
        "admin:leasing_capacity_cluster": {"cluster_id": cluster.pk},
        "operator:capacity-cluster": {"slug": cluster.slug},
        "operator:fleet-node": {"hostname": cluster.nodes.order_by("pk").first().hostname},
        "operator:availability-report": {"pk": AvailabilityReport.objects.first().pk},
        "admin:billing_cancel_late_delivery": {"line_id": lines[0].pk},
    }

    def url(name: str, pattern: URLPattern) -> str:
        needed = set(pattern.pattern.converters)
        kwargs = by_name.get(name, {})
        if name.startswith("operator:reclaim:") and needed == {"pk"}:
            kwargs = {"pk": decision.pk}
        assert needed == set(kwargs), f"give the test sample arguments for {name}"
        return reverse(name, kwargs=kwargs or None)

    return {"url": url, "decision": decision, "invoice": invoice}


def staff(username: str, *groups: str, perms: tuple[str, ...] = ()):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=groups))
    for perm in perms:
        label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=label, codename=codename)
        )
    return user


def group_perms(name: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=name).permissions.select_related("content_type")
    }


def snapshot() -> dict[str, list]:
    """Every row of the project's tables and the admin log: what a refusal must not change."""
    models = [m for m in apps.get_models() if m._meta.app_label in PROJECT[2:]] + [LogEntry]
    return {m._meta.label: list(m.objects.order_by("pk").values()) for m in models}


def test_staff_without_permissions_is_refused_everywhere_and_nothing_is_written(client, world):
    client.force_login(staff("nobody"))
    before = snapshot()
    refused = []
    for name, pattern in operator_urls():
        url = world["url"](name, pattern)
        refused += [
            (name, "GET", client.get(url).status_code),
            (name, "POST", client.post(url, {"reason": "x"}).status_code),
        ]
    assert {status for *_, status in refused} == {403}, refused
    assert snapshot() == before
    assert Notice.objects.count() == 0


def test_anonymous_is_sent_to_the_login(client, world):
    for name, pattern in operator_urls():
        response = client.post(world["url"](name, pattern))
        assert response.status_code == 302, name
        assert "/admin/login/" in response["Location"]


def test_each_group_opens_what_its_permissions_allow_and_nothing_else(client, world):
    outcomes = []
    for role in ROLES:
        client.force_login(staff(f"in-{role}", role))
        held = group_perms(role)
        for name, pattern in operator_urls():
            url = world["url"](name, pattern)
            for method, needed in pattern.callback.operator_permissions.items():
                status = getattr(client, method.lower())(url).status_code
                allowed = set(needed) <= held
                outcomes.append((role, name, method, allowed))
                if allowed:
                    # 405: a POST-only button asked with GET; past the permission check.
                    ok = {200, 302} | ({405} if method == "GET" else set())
                    assert status in ok, (role, name, method, status)
                else:
                    assert status == 403, (role, name, method, status)
    opened = {(role, name) for role, name, method, allowed in outcomes if allowed}
    # Every page is open to some role, and the read-only one writes nothing.
    assert {name for _, name in opened} == {name for name, _ in operator_urls()}
    assert ("viewer", "operator:reclaim:reject") not in {
        (role, name) for role, name, method, allowed in outcomes if allowed and method == "POST"
    }
    assert ("finance", "billing:revenue") in opened
    assert ("finance", "operator:dashboard") in opened  # its inbox: overdue invoices, dunning
    assert ("capacity", "billing:revenue") not in opened


def test_approving_needs_its_own_permission(client, world):
    decision = world["decision"]
    url = reverse("operator:reclaim:approve", args=[decision.pk])
    client.force_login(staff("planner", "planner"))
    detail = client.get(reverse("operator:reclaim:detail", args=[decision.pk]))
    assert detail.status_code == 200
    assert 'data-testid="approve"' not in detail.content.decode()  # no button to press
    assert 'data-testid="reject"' in detail.content.decode()
    assert client.post(url).status_code == 403
    decision.refresh_from_db()
    assert decision.status == ReclaimStatus.SCORED
    assert Notice.objects.count() == 0

    approver = staff("approver", "planner", perms=(APPROVE,))
    client.force_login(approver)
    assert client.post(url, {"confirm": "1"}).status_code == 302
    decision.refresh_from_db()
    assert decision.status == ReclaimStatus.NOTICE_ISSUED
    assert decision.decided_by == approver
    assert Notice.objects.count() == 1


def test_the_approve_permission_is_declared_and_held_by_no_group():
    perm = Permission.objects.get(codename="approve_reclaimdecision")
    assert perm.name == "Can approve a reclaim decision and give its notices"
    assert not perm.group_set.exists()


# --- groups -------------------------------------------------------------------------------


def test_the_groups_hold_their_roles():
    capacity, finance, planner, viewer = (group_perms(role) for role in ROLES)
    assert {"clusters.change_node", "leasing.change_lease", "leasing.change_notice"} <= capacity
    assert {"leasing.change_listing", "leasing.add_tenant"} <= capacity
    assert not any(p.startswith("billing.") for p in capacity)
    assert "leasing.add_apikey" not in capacity  # a key acts as the tenant: superusers only
    assert {"billing.change_invoice", "billing.view_creditnote", "leasing.view_lease"} <= finance
    assert not {p for p in finance if p.startswith(("leasing.", "clusters."))} - {
        "leasing.view_tenant",
        "leasing.view_lease",
        "leasing.view_leaseline",
    }
    assert {"reclaim.add_reclaimdecision", "reclaim.change_reclaimdecision"} <= planner
    assert APPROVE not in planner
    assert not any(p.startswith("billing.") for p in planner)
    assert all(p.split(".")[1].startswith("view_") for p in viewer)
    assert {"billing.view_invoice", "reclaim.view_reclaimdecision", "clusters.view_node"} <= viewer


def test_the_groups_migrations_are_idempotent_and_reversible():
    from importlib import import_module
    from types import SimpleNamespace

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    editor = SimpleNamespace(connection=connection)  # the functions only read its alias
    names = (
        "0002_operator_groups",
        "0003_fleet_groups",
        "0005_calibration_groups",
        "0006_receivables_roles",
        "0007_credits_groups",
        "0008_operator_keys_roles",
    )
    migrations = [import_module(f"reclaim.migrations.{name}") for name in names]
    states = [MigrationLoader(connection).project_state(("reclaim", name)).apps for name in names]
    Group.objects.get(name="viewer").permissions.add(
        Permission.objects.get(codename="add_invoice")  # an operator's own addition stays
    )
    before = {role: group_perms(role) for role in ROLES}
    migrations[0].create_groups(states[0], editor)
    for migration, state in zip(migrations[1:], states[1:], strict=True):
        migration.grant(state, editor)
    assert {role: group_perms(role) for role in ROLES} == before
    migrations[1].revoke(states[1], editor)
    assert "clusters.view_incident" not in group_perms("viewer")
    assert "clusters.view_node" in group_perms("viewer")
    migrations[0].remove_groups(states[0], editor)
    assert not Group.objects.filter(name__in=ROLES).exists()
    migrations[0].create_groups(states[0], editor)
    for migration, state in zip(migrations[1:], states[1:], strict=True):
        migration.grant(state, editor)
    assert group_perms("viewer") == before["viewer"] - {"billing.add_invoice"}
    assert {"clusters.add_incident", "leasing.change_maintenancedeferral"} <= group_perms(
        "capacity"
    )


# --- admin actions -------------------------------------------------------------------------


def our_model_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in PROJECT
    ]


def test_every_admin_action_declares_its_permissions():
    undeclared = [
        f"{model._meta.label}.{name}"
        for model, model_admin in our_model_admins()
        for func, name, _ in model_admin._get_base_actions()
        if not getattr(func, "allowed_permissions", None)
    ]
    assert undeclared == []


def offered(user) -> dict[str, set[str]]:
    """The actions the admin offers `user` on each of the project's models."""
    request = RequestFactory().get("/admin/")
    request.user = user
    out = {}
    for model, model_admin in our_model_admins():
        names = set(model_admin.get_actions(request)) - {"delete_selected"}
        if names:
            out[model._meta.label] = names
    return out


def test_the_admin_offers_each_role_only_its_actions():
    assert offered(staff("nobody")) == {}
    assert offered(staff("viewer", "viewer")) == {}
    capacity = offered(staff("capacity", "capacity"))
    assert capacity["leasing.Lease"] == {"approve", "reject", "confirm_release", "renew"}
    assert "give_operator_notice" not in capacity["leasing.Lease"]  # a notice is a reclaim
    assert set(capacity) == {
        "clusters.Node",
        "leasing.Allocation",
        "leasing.Listing",
        "leasing.Lease",
        "leasing.Notice",
        "leasing.ApiKey",
        "webhooks.WebhookEndpoint",
        "webhooks.WebhookDelivery",
        "common.EventDelivery",
        "clusters.Incident",
        "clusters.MonitoringSource",
        "clusters.MaintenanceWindow",
        "leasing.MaintenanceDeferral",
    }
    assert capacity["leasing.ApiKey"] == {"revoke"}
    assert capacity["clusters.Incident"] == {"resolve_selected"}
    assert capacity["clusters.MonitoringSource"] == {"revoke"}
    assert capacity["leasing.Allocation"] == {"replace_from_spare"}
    assert offered(staff("finance", "finance")) == {
        "billing.Invoice": {"issue_selected", "void_selected", "mark_paid_selected"},
        "billing.Payment": {"reverse_selected"},
    }
    assert offered(staff("planner", "planner")) == {
        "reclaim.ReclaimDecision": {"reject", "rescore"}
    }
    approver = offered(staff("approver", "planner", "capacity", perms=(APPROVE,)))
    assert approver["reclaim.ReclaimDecision"] == {"approve", "reject", "rescore"}
    assert "give_operator_notice" in approver["leasing.Lease"]


def test_a_refused_admin_action_runs_nothing(client, world):
    decision = world["decision"]
    client.force_login(staff("planner", "planner"))
    changelist = reverse("admin:reclaim_reclaimdecision_changelist")
    before = snapshot()
    response = client.post(changelist, {"action": "approve", "_selected_action": [decision.pk]})
    assert response.status_code in (200, 302)
    assert snapshot() == before
    invoice = world["invoice"]
    # The void action's second step: the form answered (why, and what follows).
    void = {
        "action": "void_selected",
        "_selected_action": [invoice.pk],
        "apply": "1",
        "reason": "billed twice",
        "resolution": "reissue",
    }
    client.force_login(staff("capacity", "capacity"))
    client.post(reverse("admin:billing_invoice_changelist"), void)
    assert snapshot() == before
    client.force_login(staff("finance", "finance"))
    client.post(reverse("admin:billing_invoice_changelist"), void)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID  # the same request, from the role that may


# --- who did it ----------------------------------------------------------------------------


def logged(obj) -> list[tuple[str, str]]:
    """(username, message) of the admin log entries about `obj`, oldest first."""
    return [
        (entry.user.username, entry.change_message)
        for entry in LogEntry.objects.filter(object_id=str(obj.pk))
        .filter(content_type__model=obj._meta.model_name)
        .select_related("user")
        .order_by("pk")
    ]


def test_every_operator_write_records_who_did_it(client, world):
    decision, invoice = world["decision"], world["invoice"]
    client.force_login(staff("planner", "planner"))
    client.post(reverse("operator:reclaim:score", args=[decision.pk]))
    client.force_login(staff("approver", "planner", perms=(APPROVE,)))
    client.post(reverse("operator:reclaim:approve", args=[decision.pk]), {"confirm": "1"})
    assert logged(decision) == [("planner", "Re-scored"), ("approver", "Approved")]

    client.force_login(staff("finance", "finance"))
    client.post(
        reverse("admin:billing_invoice_changelist"),
        {
            "action": "void_selected",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "reason": "billed twice",
            "resolution": "waive",
        },
    )
    assert logged(invoice) == [("finance", "Voided")]

    # A node no lease holds (held ones keep their status: clusters/admin.py), confirmed.
    node = Node.objects.create(cluster=decision.lines.first().cluster, hostname="spare-node-1")
    client.force_login(staff("capacity", "capacity"))
    client.post(
        reverse("admin:clusters_node_changelist"),
        {"action": "mark_maintenance", "_selected_action": [node.pk], "apply": "1"},
    )
    node.refresh_from_db()
    assert node.status == "maintenance"
    assert logged(node) == [("capacity", "Marked maintenance")]

    key, _ = api_key_create(tenant=decision.lines.first().lease.tenant, name="k")
    client.post(
        reverse("admin:leasing_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert logged(key) == [("capacity", "Revoked")]
