"""A real `celery -A config worker` subprocess for the tests that need a broker (Redis).

Each such test uses its own Redis database and queue, so two of them never consume each
other's messages. The worker runs the project's settings against the test database.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import ROOT, database_url


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class Worker:
    """One `celery -A config worker` process group on `broker`, restartable. `queues` (comma
    separated, default: Celery's default queue) and `name` (the worker's hostname prefix)."""

    def __init__(
        self,
        log_dir: str,
        *,
        broker: str,
        name: str,
        queues: str | None = None,
        concurrency: int = 3,
        env: dict[str, str] | None = None,
    ):
        self.log_dir = log_dir
        self.name = name
        self.queues = queues
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker,
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }

    def start(self) -> None:
        self.starts += 1
        log = Path(self.log_dir) / f"worker-{self.starts}.log"
        self.log = log
        queues = ["-Q", self.queues] if self.queues else []
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool=prefork",
                    f"--concurrency={self.concurrency}",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    f"--hostname={self.name}-{self.starts}@%h",
                    *queues,
                ],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while "ready." not in log.read_text():
            assert self.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole worker: parent and pool children, no chance to clean up."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def kill_a_child(self) -> bool:
        assert self.proc is not None
        kids = children_of(self.proc.pid)
        if not kids:
            return False
        os.kill(random.choice(kids), signal.SIGKILL)
        return True

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(Path(self.log_dir).glob("*.log")))


def wait_for(predicate, timeout: float, what: str, worker: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{worker.logs()[-4000:]}"
        time.sleep(0.05)
