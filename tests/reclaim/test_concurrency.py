"""Two processes approve the same decision at the same instant on PostgreSQL: the notices are
given once (the decision row lock serializes them; the second sees NOTICE_ISSUED and refuses)."""

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from leasing.models import Notice
from reclaim.choices import ReclaimStatus
from reclaim.models import ReclaimDecision
from reclaim.services import decision_create, planned_notices

from .conftest import CHEAP, DEAR, SMALL_WORKLOAD, at, make_lease

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),  # the catalog is restored by tests/conftest.py
]

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


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
    env = {**os.environ, "DATABASE_URL": database_url(), "DB_CONN_MAX_AGE": "0"}
    start_at = str(time.time() + 3.0)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reclaim.workers",
                "approve",
                start_at,
                str(decision.pk),
                now.isoformat(),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["ok"] for r in results) == 1
    assert {r["code"] for r in results if not r["ok"]} == {"transition_not_allowed"}
    decision = ReclaimDecision.objects.get(pk=decision.pk)
    assert decision.status == ReclaimStatus.NOTICE_ISSUED
    assert Notice.objects.count() == expected
    assert decision.notices.count() == expected
