"""Two processes approve the same decision at the same instant on PostgreSQL: the notices are
given once (the decision row lock serializes them; the second sees NOTICE_ISSUED and refuses)."""

import datetime as dt

import pytest

from leasing.models import Notice
from reclaim.choices import ReclaimStatus
from reclaim.models import ReclaimDecision
from reclaim.services import decision_create, planned_notices
from tests.processes import run_together

from .conftest import CHEAP, DEAR, SMALL_WORKLOAD, at, make_lease

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),  # the catalog is restored by tests/conftest.py
]

WORKERS = 4


def test_concurrent_approvals_issue_the_notices_once():
    _, a_lines = make_lease((CHEAP, DEAR))
    _, b_lines = make_lease((CHEAP, DEAR))
    now = at(2026, 1, 5, 9)
    decision = decision_create(
        title="race",
        lines=[*a_lines, b_lines[1]],
        notice_date=dt.date(2026, 1, 10),
        workload=SMALL_WORKLOAD,
        now=now,
    )
    expected = len(planned_notices(decision))
    assert expected == 2
    results = run_together(
        "tests.reclaim.workers", [["approve", str(decision.pk), now.isoformat()]] * WORKERS
    )
    assert sum(r["ok"] for r in results) == 1
    assert {r["code"] for r in results if not r["ok"]} == {"transition_not_allowed"}
    decision = ReclaimDecision.objects.get(pk=decision.pk)
    assert decision.status == ReclaimStatus.NOTICE_ISSUED
    assert Notice.objects.count() == expected
    assert decision.notices.count() == expected
