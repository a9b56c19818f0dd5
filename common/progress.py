"""Progress reporting for long-running commands (seed, billing runs, sweeps).

A `Progress` is called as `progress(label, done, total)`; it draws one tqdm bar per label on
stderr, so stdout stays clean for what a script may parse. `quiet_progress` does nothing.
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from tqdm import tqdm


class ProgressFn(Protocol):
    def __call__(self, label: str, done: int, total: int) -> None: ...


def quiet_progress(label: str, done: int, total: int) -> None:
    """A progress callback that reports nothing (tests, library use)."""


class Progress:
    """One bar per label, advanced to `done` of `total`; closed when it reaches the total."""

    def __init__(self, stream: TextIO | None = None, *, disable: bool = False):
        self._stream = stream or sys.stderr
        self._disable = disable
        self._bars: dict[str, tqdm] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        bar = self._bars.get(label)
        if bar is None:
            bar = tqdm(
                total=total,
                desc=label,
                file=self._stream,
                disable=self._disable,
                leave=True,
                unit="row",
                dynamic_ncols=True,
            )
            self._bars[label] = bar
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
