"""Timing and peak memory of a run, by stage: the one mechanism every command's summary uses.

A :class:`Clock` adds the wall time of each stage (:data:`linkage.engine.STAGES`) to ``seconds``, calls the
progress callback as a stage starts, and reads the process's peak resident memory at the end. A stage may
be entered more than once (ingest reads and normalises chunk by chunk); its times add up.

>>> clock = Clock()
>>> with clock.stage("score"):
...     pass
>>> sorted(clock.seconds) == ["score"] and clock.seconds["score"] >= 0
True
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Clock", "Progress", "peak_rss_mb"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
"""Called with a stage's name as it starts."""


class Clock:
    """Seconds per stage, in the order the stages first ran; ``total`` from the clock's start."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._progress = progress
        self._start = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as (part of) stage ``name``."""
        if self._progress is not None:
            self._progress(name)
        log.info("stage %s", name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name`` (for work timed piecewise, such as reading a file in chunks)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def summary(self) -> dict[str, float]:
        """Each stage's seconds, rounded to the millisecond, and ``total`` since the clock started."""
        out = {name: round(value, 3) for name, value in self.seconds.items()}
        out["total"] = round(time.perf_counter() - self._start, 3)
        return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished worker processes, in MB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)
