"""A hosted Oracle's rate limits, shared by the Oracle replicas through the broker's log: two refiner processes
against the OpenAI-protocol stand-in stay within the requests per window between them (measured at the stand-in),
where one limit per process would let them send twice as many; a tokens limit admits as the provider counts."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from learnerfit.domain import topics
from learnerfit.errors import InvalidInput
from learnerfit.local.stack import LocalStack
from learnerfit.runtime.bus import Bus
from learnerfit.runtime.ratelimit import RATE_LEASES, RateLimitSettings, SharedRateLimit
from tests.fake_oracle import FakeOracle
from tests.kafka_helpers import read_topic
from tests.services.test_oracle_spend import _sample, _solve

WINDOW_S, PER_WINDOW = 2.0, 3
LATENCY_S = 0.5  # most a granted request may wait to read its lease back before it goes out


def test_two_refiner_processes_share_one_requests_per_window_limit(tmp_path):
    oracle = FakeOracle(_solve)
    stack = LocalStack(tmp_path / "stack", services=("refiner",), start_timeout_s=120, config={"refiner": {
        "oracle": {"backend": "openai", "model": "oracle-model", "endpoint": oracle.endpoint, "max_retries": 0},
        "oracle_limits": {"requests_per_minute": PER_WINDOW, "window_s": WINDOW_S},
        "stage": {"max_batch": 8, "max_wait_s": 0.5}}})
    stack.common = {"bus": {"topic_partitions": 4}}
    try:
        stack.start()
        stack.add_replica("refiner")
        bus = Bus(stack.state.bootstrap_servers, client_id="rate-limit-test")
        bus.publish((topics.SCORED, _sample(i, 3, f"b-rate-{i % 4}")) for i in range(12))
        outputs = read_topic(bus, topics.TRAJECTORIES, at_least=12, timeout_s=120)
        bus.close()
        logs = [(tmp_path / "stack" / "logs" / f"{name}.log").read_text() for name in ("refiner", "refiner#2")]
    finally:
        stack.stop()
        oracle.close()
    assert len(outputs) == 12 and len(oracle.arrivals) == 12
    assert all("stage refiner consuming" in log for log in logs)
    arrivals = sorted(oracle.arrivals)
    # Any PER_WINDOW + 1 requests span a window at least (less the time a grant takes to read back); per process,
    # the two would have sent 2 x PER_WINDOW at once.
    spans = [arrivals[i + PER_WINDOW] - arrivals[i] for i in range(len(arrivals) - PER_WINDOW)]
    assert min(spans) >= WINDOW_S - LATENCY_S, spans
    print(f"12 requests from 2 refiners in {arrivals[-1] - arrivals[0]:.1f}s; shortest span of "
          f"{PER_WINDOW + 1}: {min(spans):.2f}s (window {WINDOW_S}s)")


def test_a_tokens_limit_admits_as_the_provider_counts_and_refuses_a_request_it_can_never_fit(broker):
    bus = Bus(broker.bootstrap_servers, client_id=f"rate-{uuid.uuid4().hex[:6]}", topic_prefix=f"r{uuid.uuid4().hex[:6]}-")
    bus.ensure_topics([RATE_LEASES], 1)
    limit = SharedRateLimit(bus, "endpoint model", RateLimitSettings(tokens_per_minute=1000, window_s=1.5))
    stop = threading.Event()
    reader = threading.Thread(target=limit.run, args=(stop,), daemon=True)
    reader.start()
    try:
        started = time.monotonic()
        limit.admit(1, 600)
        first = time.monotonic() - started
        limit.admit(1, 600)  # 1200 > 1000 in the window: waits for the first to leave it
        second = time.monotonic() - started
        with pytest.raises(InvalidInput, match="more than the whole limit of 1000"):
            limit.admit(1, 2000)
    finally:
        stop.set()
        reader.join(5)
        bus.close()
    assert first < 1.0 and second >= 1.5, (first, second)
