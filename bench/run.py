"""Run every benchmark under bench/ (bench_*.py) in turn; each prints its figures and ratios.

make bench                      # all of them
python bench/run.py seed perf   # only those whose name contains a given word
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(word in s.stem for word in argv)]
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres", **os.environ}
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem}", flush=True)
        result = subprocess.run([sys.executable, str(script)], env=env, check=False)
        if result.returncode != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
