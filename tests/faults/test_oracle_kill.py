"""The refiner as a process, against the OpenAI-protocol stand-in, SIGKILLed after its outputs were published and
before its inputs were committed: restarted, it reads those inputs again and asks the Oracle for nothing it already
paid for (the outputs are on the topics); new work is asked for as usual."""

from __future__ import annotations

import time

from learnerfit.domain import topics
from learnerfit.local.stack import LocalStack
from learnerfit.runtime.bus import Bus
from learnerfit.runtime.faults import PAUSE_AT, PAUSE_DIR
from learnerfit.v1 import records_pb2
from tests.fake_oracle import FakeOracle
from tests.kafka_helpers import read_topic
from tests.services.test_oracle_spend import _sample, _solve

POINT = "refiner.published"


def test_a_refiner_killed_between_publishing_and_committing_does_not_pay_the_oracle_again(tmp_path, monkeypatch):
    oracle = FakeOracle(_solve)
    stack = LocalStack(tmp_path / "stack", services=("refiner",), start_timeout_s=120, config={"refiner": {
        "oracle": {"backend": "openai", "model": "oracle-model", "endpoint": oracle.endpoint, "max_retries": 0},
        "stage": {"max_wait_s": 1.0}}})
    monkeypatch.setenv(PAUSE_AT, POINT)
    monkeypatch.setenv(PAUSE_DIR, str(tmp_path))
    try:
        stack.start()
        monkeypatch.delenv(PAUSE_AT)  # the restarted refiner is not armed
        bus = Bus(stack.state.bootstrap_servers, client_id="oracle-kill-test")
        bus.publish((topics.SCORED, _sample(i, 5, "b-kill")) for i in range(4))
        deadline = time.monotonic() + 120
        while not (tmp_path / POINT).exists():
            assert time.monotonic() < deadline, f"the refiner never reached {POINT}"
            stack.check_alive()
            time.sleep(0.05)
        paid = len(oracle.requests)
        before = read_topic(bus, topics.TRAJECTORIES, at_least=paid, timeout_s=30)
        assert paid >= 1 and len(before) == paid  # held after publishing what it was paid for
        stack.kill("refiner")
        stack.restart("refiner")
        bus.publish([(topics.SCORED, _sample(7, 5, "b-kill"))])  # new work after the restart
        after = [records_pb2.Trajectory.FromString(r.value)
                 for r in read_topic(bus, topics.TRAJECTORIES, at_least=5, timeout_s=120, settle_s=2)]
        bus.close()
    finally:
        stack.stop()
        oracle.close()
    assert len(oracle.requests) == 5, f"asked {len(oracle.requests)} times for 5 outputs ({paid} before the kill)"
    assert len(after) == len({t.id for t in after}) == 5  # each output once: none written again
