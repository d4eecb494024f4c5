"""Model time: the seconds a process spends inside its models' forward passes, exported as a metric.

Everything a stage spends outside this time (the bus, serialisation, waiting for a batch to
fill) is the pipeline's overhead; the end-to-end benchmark (bench/pipeline.py) reads both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter

MODEL_SECONDS = Counter("learnerfit_model_seconds_total", "Seconds spent inside model calls (generation, "
                        "log-prob scoring, reward scoring), measured around the engine call.", ["call"])
MODEL_CALLS = Counter("learnerfit_model_calls_total", "Model calls made.", ["call"])


@contextmanager
def model_time(call: str) -> Iterator[None]:
    """Counts the block's wall time as model time of `call` (generate, score or reward). Not labelled by model:
    checkpoint paths would make labels without bound, and one process serves one learner at a time."""
    started = time.perf_counter()
    try:
        yield
    finally:
        MODEL_SECONDS.labels(call).inc(time.perf_counter() - started)
        MODEL_CALLS.labels(call).inc()
