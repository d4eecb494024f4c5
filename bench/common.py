"""What the benchmarks share: the learner, problems, a timer and the ratio table."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

THREADS = int(os.environ.get("BENCH_TORCH_THREADS", "1"))  # the services' default: one torch thread each


def set_threads() -> None:
    torch.set_num_threads(THREADS)


@dataclass
class Measured:
    name: str
    tokens: int      # units of work: tokens, or records for the bus benchmarks
    seconds: float
    unit: str = "tok"

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def timed(name: str, run: Callable[[], int], unit: str = "tok") -> Measured:
    """Runs `run` (which returns the tokens, or records, it processed) once and times it."""
    started = time.perf_counter()
    tokens = run()
    return Measured(name, tokens, time.perf_counter() - started, unit)


@dataclass
class Ratio:
    bench: str
    subject: Measured
    baseline: Measured
    target: str  # e.g. ">= 0.9", or "" when the ratio is reported only

    @property
    def value(self) -> float:
        return self.subject.tokens_per_s / self.baseline.tokens_per_s

    @property
    def verdict(self) -> str:
        if not self.target:
            return "reported"
        bound = float(self.target.split()[-1])
        return "meets" if self.value >= bound else "MISSES"


def print_table(ratios: list[Ratio]) -> None:
    header = f"{'benchmark':<12} {'subject':<44} {'baseline':<44} {'ratio':>6}  {'target':<7} verdict"
    print(header)
    print("-" * len(header))
    for r in ratios:
        print(f"{r.bench:<12} {_cell(r.subject):<44} {_cell(r.baseline):<44} {r.value:>5.2f}x  {r.target:<7} "
              f"{r.verdict}")


def _cell(m: Measured) -> str:
    return f"{m.name} ({m.tokens_per_s:.0f} {m.unit}/s)"
