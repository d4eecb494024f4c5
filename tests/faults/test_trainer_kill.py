"""The trainer as a process, SIGKILLed while it trains, while it decides a checkpoint's promotion, and as if killed
between registering and committing: each curated example set gives exactly one checkpoint, no example is trained on
twice, and a checkpoint is announced as followed only once its promotion is decided."""

from __future__ import annotations

import time
from pathlib import Path

from learnerfit.domain import topics
from learnerfit.local.stack import LocalStack
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.runtime.bus import Bus
from learnerfit.v1 import records_pb2
from tests.kafka_helpers import read_topic
from tests.services.test_trainer import _example


def _wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _checkpoints(registry: Path) -> list[records_pb2.Checkpoint]:
    return CheckpointRegistry.reader(registry).list()


def test_a_killed_trainer_trains_each_example_set_once(tiny_model, tmp_path):
    registry = tmp_path / "registry"
    # The promotion gate on, with the held-out set it needs to decide on its own (16 x 4; the tiny model is fast).
    stack = LocalStack(tmp_path / "stack", services=("trainer",), start_timeout_s=120, config={"trainer": {
        "registry_dir": str(registry), "train_every": 3,
        "train": {"base_model": str(tiny_model), "eval_problems": 16, "eval_k": 4, "eval_max_new_tokens": 16}}})
    stack.start()
    bus = Bus(stack.state.bootstrap_servers, client_id="trainer-kill-test")
    log = Path(stack.state.services["trainer"].log)
    try:
        bus.publish((topics.CURATED, _example(i)) for i in range(3))
        # Killed while training: the three examples are held, nothing is registered, no offset is committed.
        _wait_until(lambda: "training on 3 curated examples" in log.read_text(), 120, "training to start")
        stack.kill("trainer")
        assert _checkpoints(registry) == []
        stack.restart("trainer")
        # Killed again mid-promotion: v1 is registered (pending) and the gate is sampling the base model to
        # compare; nothing is announced, so no follower takes a checkpoint that was never judged.
        _wait_until(lambda: f"held-out avg@4 of {tiny_model} " in log.read_text(), 180, "the gate's comparison")
        stack.kill("trainer")
        [pending] = _checkpoints(registry)
        assert pending.promotion.state == records_pb2.PROMOTION_STATE_PENDING
        assert read_topic(bus, topics.CHECKPOINTS, at_least=0, timeout_s=2) == []
        stack.restart("trainer")  # decides v1 at start, then announces it
        _wait_until(lambda: _checkpoints(registry)[0].promotion.state == records_pb2.PROMOTION_STATE_PROMOTED, 180,
                    "v1 decided")
        first = [records_pb2.Checkpoint.FromString(r.value) for r in read_topic(bus, topics.CHECKPOINTS, at_least=1)]
        assert [(c.version, c.promotion.state) for c in first][-1] == ("v1", records_pb2.PROMOTION_STATE_PROMOTED)

        # Registered, then the commit is lost: restarted in a group with no commits (the broker refuses to rewind
        # a group for a client outside it), the trainer reads the three examples again and skips them, as the
        # registry says they are trained on.
        stack.kill("trainer")
        stack.config["trainer"]["stage"] = {"group": "trainer-with-no-commits"}
        stack.restart("trainer")
        bus.publish((topics.CURATED, _example(i)) for i in range(3, 6))
        _wait_until(lambda: len(_checkpoints(registry)) == 2, 180, "the second checkpoint")
        time.sleep(3)  # room for a wrong third checkpoint to appear
        checkpoints = _checkpoints(registry)
        announced = {records_pb2.Checkpoint.FromString(r.value).version
                     for r in read_topic(bus, topics.CHECKPOINTS, at_least=2)}
    finally:
        bus.close()
        stack.stop()
    assert [sorted(c.example_ids) for c in checkpoints] == [
        ["example-0", "example-1", "example-2"], ["example-3", "example-4", "example-5"]]
    assert announced == {"v1", "v2"}
    assert "training on 3 curated examples" in log.read_text().split("partitions assigned")[-1]
