"""The operator dashboard: capacity by state, run-rate per tenant, upcoming dates."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from config import dashboard
from leasing.models import Allocation, Notice
from tests.factories.clusters import accelerator, cluster_with_nodes
from tests.factories.leasing import LeaseFactory, LeaseLineFactory, TenantFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def hold(line, nodes, start, end):
    Allocation.objects.bulk_create(
        Allocation(line=line, node=n, starts_at=start, ends_at=end) for n in nodes
    )


@pytest.fixture
def fleet():
    """10 H100 nodes: 4 leased now, 2 reserved for a later lease, 1 down, 3 free."""
    cluster = cluster_with_nodes(10, accelerator=accelerator("h100"), gpus_per_node=8)
    nodes = list(cluster.nodes.order_by("pk"))
    lab = TenantFactory(name="Northwind AI")
    running = LeaseFactory(tenant=lab, commencement_date=dt.date(2026, 1, 1))
    line = LeaseLineFactory(
        lease=running, cluster=cluster, node_count=4, monthly_rate=Decimal("1250000000.00")
    )
    hold(line, nodes[:4], running.commencement, running.term_end)
    later = LeaseFactory(tenant=lab, status="scheduled", commencement_date=dt.date(2026, 5, 1))
    later_line = LeaseLineFactory(
        lease=later, cluster=cluster, node_count=2, monthly_rate=Decimal("10.00")
    )
    hold(later_line, nodes[4:6], later.commencement, later.term_end)
    nodes[6].status = "down"
    nodes[6].save()
    other = LeaseFactory(
        tenant=TenantFactory(name="Helios Labs"), commencement_date=dt.date(2026, 2, 1)
    )
    LeaseLineFactory(
        lease=other, cluster=cluster, node_count=1, monthly_rate=Decimal("920000000.00")
    )
    return cluster, running, later


def test_each_node_counts_in_exactly_one_state(fleet, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        (row,) = dashboard.capacity(NOW)
    assert row.gpus == {"leased": 32, "reserved": 16, "free": 24, "down": 8}
    assert row.total == 80


def test_a_leased_node_that_goes_down_still_counts_as_leased(fleet):
    cluster, *_ = fleet
    cluster.nodes.filter(pk=cluster.nodes.order_by("pk")[0].pk).update(status="down")
    (row,) = dashboard.capacity(NOW)
    assert row.gpus == {"leased": 32, "reserved": 16, "free": 24, "down": 8}


def test_run_rate_counts_running_lines_per_tenant(fleet):
    rates = dashboard.run_rate_by_tenant(NOW)
    assert [(r["tenant"], r["monthly_rate"]) for r in rates] == [
        ("Northwind AI", Decimal("1250000000.00")),
        ("Helios Labs", Decimal("920000000.00")),
    ]
    assert rates[0]["monthly_rate_display"] == "$1,250,000,000.00"


def test_milestones_list_term_ends_commencements_and_notices(fleet):
    _, running, later = fleet
    Notice.objects.create(
        lease=running,
        given_by="tenant",
        received_at=NOW,
        notice_date=NOW.date(),
        effective_end=dt.datetime(2026, 5, 31, tzinfo=dt.UTC),
        outcome="ends",
    )
    kinds = [(m.kind, m.lease) for m in dashboard.milestones(NOW)]
    assert ("notice effective", running.number) in kinds
    assert ("commencement", later.number) in kinds
    assert ("term end", running.number) in kinds
    assert kinds.index(("notice effective", running.number)) < kinds.index(
        ("term end", running.number)
    ), "sorted by date"


def test_page_is_staff_only_and_draws_its_charts(client, django_user_model, fleet):
    url = reverse("operator:dashboard")
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(django_user_model.objects.create_user("tenant-user", password="pw"))
    assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    page = client.get(url).content.decode()
    assert page.count('<svg role="img"') == 1, "nothing upcoming today: no empty timeline"
    assert "Nothing in the next 180 days." in page
    soon = dt.datetime.now(tz=dt.UTC).date() + dt.timedelta(days=20)
    LeaseFactory(number="L-SOON", status="scheduled", commencement_date=soon)
    page = client.get(url).content.decode()
    assert page.count('<svg role="img"') == 2
    assert "L-SOON" in page
    assert "currentColor" in page, "chart ink follows the theme's text colour"
    # The fixture's leases (from January 2026) have ended by now: no rent runs.
    assert "No running leases." in page
    started = dt.datetime.now(tz=dt.UTC).date() - dt.timedelta(days=10)
    lease = LeaseFactory(tenant=TenantFactory(name="Today's lab"), commencement_date=started)
    LeaseLineFactory(lease=lease, node_count=1, monthly_rate=Decimal("2170000000.00"))
    page = client.get(url).content.decode()
    assert "Today&#x27;s lab" in page
    assert "$2,170,000,000.00" in page


def test_cross_campus_section_explains_why_training_across_campuses_is_poor():
    from clusters.demo import seed_inventory

    seed_inventory(scale=0.004)
    cross = dashboard.cross_campus(NOW)
    assert len(cross["links"]) == 3
    assert cross["ratio"] > 1.5, "the best placement beats synchronous-everywhere"
    assert cross["all_sync"]["efficiency"] < cross["best"]["efficiency"]
    reasons = " ".join(cross["assessment"]["explanation"])
    assert "slowest pool" in reasons
    assert "inter-site sync" in reasons


def test_open_decisions_are_listed_with_their_recommendation(client, django_user_model):
    from reclaim.models import ReclaimDecision

    ReclaimDecision.objects.create(
        title="Take back campus 1 H100s",
        status="scored",
        scope_kind="cluster",
        notice_date=NOW.date(),
        recommendation="keep_leased",
        internal_value=Decimal("12127297.85"),
        rent_forgone=Decimal("6429185437.81"),
        net_value=Decimal("-6417058139.96"),
    )
    ReclaimDecision.objects.create(
        title="Rejected one", status="rejected", scope_kind="lease", notice_date=NOW.date()
    )
    assert [d.title for d in dashboard.open_decisions()] == ["Take back campus 1 H100s"]
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    page = client.get(reverse("operator:dashboard")).content.decode()
    assert "Take back campus 1 H100s" in page
    assert "-$6,417,058,139.96" in page
    assert "Keep leased" in page


def test_admin_index_links_every_operator_page(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    page = client.get(reverse("admin:index")).content.decode()
    for name in (
        "operator:dashboard",
        "operator:capacity",
        "operator:reclaim:list",
        "billing:revenue",
    ):
        url = reverse(name)
        assert f'href="{url}"' in page, name
        assert client.get(url).status_code == 200, name


def test_dashboard_renders_when_no_node_can_run(client, django_user_model):
    from tests.factories.clusters import ClusterFactory, NodeFactory

    ClusterFactory()  # a cluster being entered: no nodes yet
    NodeFactory(status="down")
    assert dashboard.cross_campus(NOW)["assessment"] is None
    client.force_login(django_user_model.objects.create_superuser("op", "op@x.example", "pw"))
    assert client.get(reverse("operator:dashboard")).status_code == 200


def test_run_rate_leaves_out_leases_past_their_end(fleet):
    """A lease in holdover (ended, nodes not yet released) pays holdover, not monthly rent."""
    _, running, _ = fleet
    running.status = "holdover"
    running.effective_end = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    running.save()
    assert [r["tenant"] for r in dashboard.run_rate_by_tenant(NOW)] == ["Helios Labs"]


def test_dashboard_and_revenue_page_agree_on_the_run_rate():
    """The two pages compute the running rent separately (one in SQL filters, one in Python
    over the lines it reads for accruals); on the demo book they must agree to the cent."""
    from billing.demo import seed_billing
    from billing.selectors import revenue_summary
    from clusters.demo import seed_inventory
    from leasing.demo import seed_leasing

    now = dt.datetime(2026, 11, 27, 15, tzinfo=dt.UTC)
    seed_inventory(scale=0.01)
    seed_leasing(now=now)
    seed_billing(now=now)
    dashboard_total = sum(r["monthly_rate"] for r in dashboard.run_rate_by_tenant(now))
    assert dashboard_total > 0
    assert dashboard_total == revenue_summary(now=now).run_rate


def test_the_timeline_is_drawn_once_a_day_not_on_every_visit(monkeypatch):
    """Its axis starts at the start of the day (UTC), so visits later the same day reuse the
    drawing; the next day, or a new milestone, draws it again."""
    drawn = []
    draw = dashboard._draw_timeline
    monkeypatch.setattr(
        dashboard,
        "_draw_timeline",
        lambda items, today, days: drawn.append(today) or draw(items, today, days),
    )
    items = [dashboard.Milestone(NOW + dt.timedelta(days=30), "term end", "L-0001", "Northwind AI")]
    morning = dashboard.timeline_chart(items, NOW.replace(hour=0, minute=1))
    evening = dashboard.timeline_chart(items, NOW.replace(hour=23, minute=59))
    assert evening == morning
    assert drawn == [NOW.replace(hour=0)]
    dashboard.timeline_chart(items, NOW + dt.timedelta(days=1))
    more = [
        *items,
        dashboard.Milestone(NOW + dt.timedelta(days=40), "commencement", "L-0002", "Lab"),
    ]
    dashboard.timeline_chart(more, NOW)
    assert drawn == [
        NOW.replace(hour=0),
        NOW.replace(hour=0) + dt.timedelta(days=1),
        NOW.replace(hour=0),
    ]
