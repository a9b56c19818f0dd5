"""The layering of the apps, checked on the source: an app imports only the apps below it.

    common → clusters → leasing → billing → reclaim, webhooks beside reclaim (docs/architecture.md)

`config/` (settings, URLs, the operator pages) sits above every app; tests and benchmarks are
free. Function-level imports count as much as module-level ones, and so does a model looked up
through the app registry (`apps.get_model("billing", ...)`), which is an import by another name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEVEL = {"common": 0, "clusters": 1, "leasing": 2, "billing": 3, "reclaim": 4, "webhooks": 4}


def _imported_apps(source: str, module: str) -> list[tuple[int, str]]:
    """(line, app) for every import of a project app in `source`, the module named `module`."""
    found: list[tuple[int, str]] = []
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = package[: len(package) - node.level]
                target = [*base, *(node.module.split(".") if node.module else [])]
                if target:
                    found.append((node.lineno, target[0]))
            elif node.module:
                found.append((node.lineno, node.module.split(".")[0]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_model"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return [(line, app) for line, app in found if app in LEVEL]


def upward_imports(source: str, module: str) -> list[str]:
    """The imports in `source` (module `module`) that climb above or beside its own app."""
    app = module.split(".")[0]
    return [
        f"{module}:{line} imports {target}"
        for line, target in _imported_apps(source, module)
        if target != app and LEVEL[target] >= LEVEL[app]
    ]


def _modules():
    for app in LEVEL:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            yield path, ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def test_no_app_imports_one_above_it():
    problems = [
        problem
        for path, module in _modules()
        for problem in upward_imports(path.read_text(encoding="utf-8"), module)
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("leasing.services", "from billing.models import Invoice"),
        ("leasing.services", "def f():\n    import billing.services\n"),
        ("clusters.admin", "from leasing.models import Lease"),
        ("leasing.api.views", "from ...reclaim import services"),
        ("leasing.services", "apps.get_model('billing', 'CreditNote')"),
        ("reclaim.services", "from webhooks.services import sign"),
        ("webhooks.services", "from reclaim.models import ReclaimDecision"),
    ],
)
def test_the_check_catches_an_upward_import(module, source):
    assert upward_imports(source, module) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("billing.services", "from leasing.models import Lease"),
        ("reclaim.services", "from billing import proration\nfrom clusters import perfmodel"),
        ("webhooks.services", "from billing.models import Invoice"),
        ("leasing.api.views", "from ..models import Lease\nfrom . import selectors"),
        ("clusters.models", "from common.fields import money_field"),
    ],
)
def test_the_check_lets_downward_and_own_imports_through(module, source):
    assert upward_imports(source, module) == []


def test_no_app_holds_more_than_a_third_of_the_code():
    def lines(app: str) -> int:
        return sum(
            len(p.read_text(encoding="utf-8").splitlines())
            for p in (ROOT / app).rglob("*.py")
            if "migrations" not in p.parts
        )

    sizes = {app: lines(app) for app in LEVEL}
    total = sum(sizes.values())
    assert all(size <= total / 3 for size in sizes.values()), sizes
