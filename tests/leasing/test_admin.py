"""Operator admin: changelists with bounded queries, actions through the services, capacity."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from leasing import boundaries, notices, services
from leasing.choices import LeaseStatus, Party
from leasing.models import Lease, Notice
from tests.factories.clusters import cluster_with_nodes
from tests.factories.leasing import TenantFactory, published_listing

from .conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, operator):
    client.force_login(operator)
    return client


def future_leases(count, nodes=2):
    """`count` leases commencing next month, approved (and one draft per call)."""
    cluster = cluster_with_nodes(count * nodes + nodes)
    listing = published_listing(cluster, earliest_start=dt.date(2020, 1, 1))
    start = timezone.localdate() + dt.timedelta(days=30)
    leases = []
    for _ in range(count):
        lease = services.lease_request(
            tenant=TenantFactory(), listing=listing, node_count=nodes, commencement_date=start
        )
        leases.append(services.lease_approve(lease=lease))
    draft = services.lease_request(
        tenant=TenantFactory(), listing=listing, node_count=nodes, commencement_date=start
    )
    for lease in leases[::2]:
        notices.notice_give(lease=lease, party=Party.TENANT)
    return leases, draft


CHANGELISTS = [
    "admin:leasing_tenant_changelist",
    "admin:leasing_listing_changelist",
    "admin:leasing_lease_changelist",
    "admin:leasing_notice_changelist",
    "admin:leasing_leaseevent_changelist",
]


@pytest.mark.parametrize("name", CHANGELISTS)
def test_changelists_render_with_a_bounded_number_of_queries(
    staff_client, name, django_assert_max_num_queries
):
    future_leases(2)
    with django_assert_max_num_queries(20) as small:
        assert staff_client.get(reverse(name)).status_code == 200
    future_leases(12)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert staff_client.get(reverse(name)).status_code == 200


def test_lease_change_page_shows_allocations_by_cluster(staff_client):
    (lease, *_), _ = future_leases(1, nodes=3)
    response = staff_client.get(reverse("admin:leasing_lease_change", args=[lease.pk]))
    assert response.status_code == 200
    assert "3 nodes" in response.content.decode()


def action(client, name, objs, model="lease", **extra):
    return client.post(
        reverse(f"admin:leasing_{model}_changelist"),
        {"action": name, "_selected_action": [o.pk for o in objs], **extra},
        follow=True,
    )


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_approve_action_reports_each_row(staff_client):
    leases, draft = future_leases(1)
    response = action(staff_client, "approve", [draft, leases[0]])
    text = messages_of(response)
    assert any(draft.number in m and m.startswith("Approved") for m in text)
    assert any("transition_not_allowed" in m and leases[0].number in m for m in text)
    draft.refresh_from_db()
    assert draft.status == LeaseStatus.SCHEDULED


def test_reject_action(staff_client):
    _, draft = future_leases(1)
    action(staff_client, "reject", [draft])
    draft.refresh_from_db()
    assert draft.status == LeaseStatus.VOID


def test_operator_notice_previews_then_gives_notice(staff_client):
    leases, _ = future_leases(2)
    target = leases[1]  # no notice yet
    preview = action(staff_client, "give_operator_notice", [target])
    assert preview.status_code == 200
    body = preview.content.decode()
    expected = services.rules.quote(
        target, services.rules.notice_date_of(timezone.now(), "UTC")
    ).effective_end
    assert expected.strftime("%Y-%m-%d") in body
    assert not Notice.objects.filter(lease=target).exists()
    response = action(
        staff_client, "give_operator_notice", [target], apply="Give notice", reason="reclaim"
    )
    assert any(m.startswith("Operator notice given") for m in messages_of(response))
    notice = Notice.objects.get(lease=target)
    assert notice.given_by == Party.OPERATOR
    assert notice.reason == "reclaim"


def test_operator_notice_preview_names_the_renewal_it_cancels(staff_client):
    leases, _ = future_leases(2)
    target = leases[1]
    renewal = services.lease_renew(lease=target)
    body = action(staff_client, "give_operator_notice", [target]).content.decode()
    assert "Cancels renewal" in body
    assert renewal.number in body


def test_release_and_renew_actions(staff_client, make_lease):
    ended = make_lease(nodes=2)
    boundaries.process_boundaries(now=at(2026, 6, 30))
    response = action(staff_client, "confirm_release", [ended])
    assert any(m.startswith("Release confirmed") for m in messages_of(response))
    leases, _ = future_leases(2)
    response = action(staff_client, "renew", [leases[1], leases[0]])
    text = messages_of(response)
    assert any(m.startswith("Renewed") for m in text)
    assert any("renewal_not_allowed" in m for m in text)  # leases[0] has a notice
    assert Lease.objects.filter(predecessor=leases[1]).exists()


def test_capacity_views(staff_client, django_assert_max_num_queries):
    leases, _ = future_leases(3)
    start = leases[0].commencement.date()
    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse("admin:leasing_capacity"), {"at": start.isoformat()})
    assert response.status_code == 200
    cluster = leases[0].lines.get().cluster
    url = reverse("admin:leasing_capacity_cluster", args=[cluster.pk])
    with django_assert_max_num_queries(12):
        response = staff_client.get(url, {"at": start.isoformat()})
    body = response.content.decode()
    assert all(lease.number in body for lease in leases)


def test_capacity_view_is_staff_only(client):
    response = client.get(reverse("admin:leasing_capacity"))
    assert response.status_code == 302


def test_lease_list_filters_by_the_zones_in_use_only(staff_client):
    future_leases(1)
    page = staff_client.get(reverse("admin:leasing_lease_changelist")).content.decode()
    assert "contract_timezone=UTC" in page
    assert "Pacific/Chatham" not in page, "not every IANA zone"


def test_notice_and_allocation_lists_name_rows_not_ids(staff_client):
    leases, _ = future_leases(2)
    notice = Notice.objects.select_related("lease").get(lease=leases[0])
    html = staff_client.get(reverse("admin:leasing_notice_changelist")).content.decode()
    assert "column-pk" not in html
    change = reverse("admin:leasing_notice_change", args=[notice.pk])
    assert f'<a href="{change}">Tenant&#x27;s notice on {notice.lease.number}</a>' in html

    line = leases[1].lines.select_related("cluster").get()
    html = staff_client.get(reverse("admin:leasing_allocation_changelist")).content.decode()
    assert "column-line_id" not in html
    line_page = reverse("admin:leasing_leaseline_change", args=[line.pk])
    assert f'<a href="{line_page}">{line.cluster.slug} · 2 nodes</a>' in html
