"""The model package loads no Django, DRF or Celery module (and no matplotlib until plotting)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_loads_no_django_rest_framework_or_celery():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys, clusters.perfmodel as m; "
        "m.assess(m.Scenario.from_dict({'workload': {'params': 1e9, 'tokens_per_step': 1e6},"
        " 'pools': [{'site': 'a', 'accelerator': 'H100', 'gpus': 8,"
        " 'fabric_gbps_per_gpu': 400}]})); "
        "print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    top = set(proc.stdout.split())
    assert "numpy" in top
    assert not top & {"django", "rest_framework", "celery", "matplotlib"}
