"""The trainer as a process, SIGKILLed while it trains and as if killed between registering and committing:
each curated example set gives exactly one checkpoint, and no example is trained on twice."""

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
    stack = LocalStack(tmp_path / "stack", services=("trainer",), start_timeout_s=120, config={"trainer": {
        "registry_dir": str(registry), "train_every": 3,
        "train": {"base_model": str(tiny_model), "eval_problems": 2, "eval_k": 1}}})
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
        _wait_until(lambda: len(_checkpoints(registry)) == 1, 180, "the first checkpoint")

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
