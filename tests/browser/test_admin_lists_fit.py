"""Every admin list shows its columns at 1440 px: measured in Chromium on the seeded demo.

For each registered ModelAdmin whose changelist has rows, every column header of its
`list_display` (the columns that matter, first) must end inside a 1440 px viewport: nothing an
operator needs is pushed off the right edge.
"""

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WIDTH = 1440

MEASURE = """() => {
  const out = [];
  for (const th of document.querySelectorAll('#result_list thead th')) {
    const name = [...th.classList].find(c => c.startsWith('column-'));
    if (name) out.push([name.slice(7), Math.round(th.getBoundingClientRect().right)]);
  }
  return out;
}"""


def test_every_admin_list_shows_its_columns_at_1440_px(operator_page):
    call_command("seed_demo", scale=0.01, no_progress=True)
    page = operator_page
    page.set_viewport_size({"width": WIDTH, "height": 900})
    measured, overflowing = [], {}
    for model in admin.site._registry:
        if not model._default_manager.exists():
            continue
        meta = model._meta
        page.goto(page.base_url + reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        columns = dict(page.evaluate(MEASURE))
        assert columns, f"{meta.label}: no list shown"
        measured.append(meta.label)
        late = {name: right for name, right in columns.items() if right > WIDTH}
        if late:
            overflowing[meta.label] = late
            page.shot(f"admin-list-overflow-{meta.label}")
    assert len(measured) >= 25, measured
    assert overflowing == {}, "\n".join(f"{k}: {v}" for k, v in overflowing.items())
