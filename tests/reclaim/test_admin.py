"""The admin's actions go through the services and report per row."""

import datetime as dt

import pytest
from django.contrib.admin.sites import AdminSite
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from leasing.models import Notice
from reclaim.admin import FlippedFilter, ReclaimDecisionAdmin
from reclaim.choices import ReclaimStatus
from reclaim.models import ReclaimDecision
from reclaim.services import decision_create

from .conftest import CHEAP, SMALL_WORKLOAD, make_lease

pytestmark = pytest.mark.django_db


def request_for(user):
    request = RequestFactory().post("/")
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_approve_action_reports_each_row(staff):
    today = dt.datetime.now(dt.UTC).date()
    _, lines = make_lease((CHEAP,), commencement_date=today)
    decision_create(title="ok", lines=lines, notice_date=today, workload=SMALL_WORKLOAD)
    _, other = make_lease((CHEAP,), commencement_date=today)
    done = decision_create(title="done", lines=other, notice_date=today, workload=SMALL_WORKLOAD)
    ReclaimDecision.objects.filter(pk=done.pk).update(status=ReclaimStatus.REJECTED)
    model_admin = ReclaimDecisionAdmin(ReclaimDecision, AdminSite())
    request = request_for(staff)
    model_admin.approve(request, ReclaimDecision.objects.all())
    texts = [str(m) for m in get_messages(request)]
    assert any(t.startswith("Approved: ok") for t in texts)
    assert any("refused — done" in t and "[transition_not_allowed]" in t for t in texts)
    assert Notice.objects.count() == 1
    flipped = FlippedFilter(request, {"flipped": ["yes"]}, ReclaimDecision, model_admin)
    assert list(flipped.queryset(request, ReclaimDecision.objects.all())) == []
