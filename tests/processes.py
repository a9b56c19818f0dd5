"""Separate processes for the tests that need true concurrency or a real worker: each is its
own interpreter with its own connection to the test database (PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The URL of the test database this process uses."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def run_together(module: str, commands: list[list[str]], *, lead_s: float = 3.0) -> list[dict]:
    """Run `python -m module <action> <start_at> <args...>` once per `[action, *args]`, all
    told to begin at the same instant (`start_at`, epoch seconds, `lead_s` from now); each
    prints one JSON line last, returned in the order of `commands`."""
    env = {**os.environ, "DATABASE_URL": database_url(), "DB_CONN_MAX_AGE": "0"}
    start_at = str(time.time() + lead_s)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", module, action, start_at, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for action, *args in commands
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results
