"""A stopwatch that adds the time since its last lap to a named step: how builds and questions report their steps."""

from __future__ import annotations

import time


class Laps:
    """Seconds per named step, in the order the steps first ran."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.steps[step] = self.steps.get(step, 0.0) + now - self.last
        self.last = now

    def ms(self) -> dict[str, float]:
        return {step: seconds * 1000 for step, seconds in self.steps.items()}
