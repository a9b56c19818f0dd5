"""Reclaim decisions: is leased capacity worth more back in the operator's own training?

- `planner.py`: pure valuation rules (windows from the notice rules, exact rent forgone, the
  scenario of a candidate set, the planner's search). No ORM access.
- `selectors.py`: reads (candidate lines of a scope, their facts, decision lists).
- `services.py`: writes (create, score, approve, reject, executed, nightly re-score).
- `tasks.py`, `consumers.py` (domain events), `admin.py`, `views.py` + `urls.py` (the operator
  workbench), `demo.py` (demo decisions).
"""
