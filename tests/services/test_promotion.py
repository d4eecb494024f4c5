"""The promotion gate through real services: the trainer registers each checkpoint pending, compares it with the
learner on its held-out problems, and only a checkpoint that is not worse is followed; the drift scorer, a real
follower, shows which learner the stack is on. The learner is the tiny model taught to answer 1 + 1, so the
held-out set (sixteen ways of asking 1 + 1) has a known answer: its own answer taught again helps it (measured:
0.72 -> 0.98), a set that teaches "Final answer: 3" harms it (-> 0.08)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import grpc
import pytest

from learnerfit.domain.prompts import training_messages
from learnerfit.registry.client import RegistryClient
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.v1 import records_pb2, services_pb2
from services.drift_scorer import SPEC as DRIFT_SCORER
from services.registry import SPEC as REGISTRY
from services.trainer import SPEC as TRAINER
from tests.running import running

PROMOTED, NOT_PROMOTED, ROLLED_BACK = (records_pb2.PROMOTION_STATE_PROMOTED, records_pb2.PROMOTION_STATE_NOT_PROMOTED,
                                       records_pb2.PROMOTION_STATE_ROLLED_BACK)
ASKED = ["Calculate 1 + 1.", "What is 1 + 1?", "Compute 1 + 1.", "Work out 1 + 1."]


def _held_out(folder):
    path = folder / "held-out.jsonl"
    path.write_text("".join(json.dumps({"question": f"{q} (case {i})", "answer": "2"}) + "\n"
                            for i in range(4) for q in ASKED))
    return path


def _set(name: str, answer: str, count: int = 8) -> services_pb2.ExampleSet:
    examples = []
    for i in range(count):
        problem = records_pb2.Problem(id=f"{name}-p{i}", question=f"Calculate 1 + 1. ({name} {i})")
        examples.append(records_pb2.CuratedExample(id=f"{name}-{i}", problem_id=problem.id, batch_id=name,
                                                   messages=training_messages(problem, answer), policy=name))
    return services_pb2.ExampleSet(examples=examples)


def _learner(drift) -> str:
    """The checkpoint the drift scorer measures under now (it catches up with announcements first)."""
    problem = records_pb2.Problem(id="probe", question="Calculate 1 + 1.", reference_answer="2")
    trajectory = records_pb2.Trajectory(id="probe", problem=problem, text="1 + 1 = 2\nFinal answer: 2")
    [scored] = drift.ScoreDrift(services_pb2.ScoreDriftRequest(trajectories=[trajectory]), timeout=60).trajectories
    return scored.scores.drift_checkpoint


def _eventually(read, want, timeout_s: float = 30.0):
    deadline, seen = time.monotonic() + timeout_s, read()
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = read()
    return seen


@pytest.fixture()
def stack(broker, tiny_solver, tmp_path):
    registry_dir = str(tmp_path / "registry")
    # Full fine-tuning at a high rate, so a few steps on eight examples change what the tiny model answers.
    train = {"base_model": str(tiny_solver), "eval_family": str(_held_out(tmp_path)), "eval_problems": 16,
             "eval_k": 4, "lora": False, "learning_rate": 2e-3, "max_steps": 40, "batch_size": 4}
    prefix = f"t{uuid.uuid4().hex[:8]}-"  # one set of topics for the three
    with running(REGISTRY, broker, prefix=prefix, registry_dir=registry_dir) as (registry, _, _), \
            running(TRAINER, broker, prefix=prefix, registry_dir=registry_dir, train_every=0,
                    train=train) as (_, trainer, _), \
            running(DRIFT_SCORER, broker, prefix=prefix, learner={"model": str(tiny_solver)},
                    registry={"target": registry.target}) as (_, drift, _):
        yield trainer, drift, RegistryClient(registry.target), CheckpointRegistry.reader(tmp_path / "registry")


def test_a_harmful_checkpoint_is_registered_but_not_followed_and_an_operator_can_roll_back_and_promote(stack):
    trainer, drift, client, registry = stack
    assert _learner(drift) == "base"
    harmful = trainer.Train(services_pb2.TrainRequest(given=_set("harmful", "Final answer: 3")),
                            timeout=300).checkpoint
    promotion = harmful.promotion
    assert harmful.version == "v1" and promotion.state == NOT_PROMOTED, promotion
    assert promotion.compared_with == "base" and promotion.decided_by == "gate" and promotion.samples == 64
    assert promotion.accuracy < promotion.compared_accuracy - 0.05 and promotion.difference_low < -0.05
    assert "may be worse than base" in promotion.reason and f"{promotion.accuracy:.3f}" in promotion.reason
    time.sleep(1)  # v1's announcement is on the topic; the follower catches up before it measures
    assert _learner(drift) == "base"

    helpful = trainer.Train(services_pb2.TrainRequest(given=_set("helpful", "1 + 1 = 2\nFinal answer: 2")),
                            timeout=300).checkpoint
    assert helpful.version == "v2" and helpful.promotion.state == PROMOTED, helpful.promotion
    assert helpful.training.start_from == "base"  # trained from the learner, not from the refused v1
    assert helpful.promotion.compared_with == "base" and helpful.promotion.sequence == 1
    assert [c.promotion.state for c in registry.list()] == [NOT_PROMOTED, PROMOTED]
    assert _eventually(lambda: _learner(drift), "v2") == "v2"

    # An operator, over the registry's API: roll the learner back (to the base model), then promote v1 after all.
    client.set_promotion("v2", records_pb2.Promotion(state=ROLLED_BACK, decided_by="operator", reason="test"))
    assert _eventually(lambda: _learner(drift), "base") == "base"
    promoted = client.set_promotion("v1", records_pb2.Promotion(state=PROMOTED, decided_by="operator", reason="t"))
    assert promoted.promotion.sequence == 2 and registry.followed().version == "v1"
    assert _eventually(lambda: _learner(drift), "v1") == "v1"
    with pytest.raises(grpc.RpcError) as error:
        client._stub.SetPromotion(services_pb2.SetPromotionRequest(version="v1"), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "promotion.state" in error.value.details()

    # The same through the CLI: the list marks the followed one; rollback without a version takes it back.
    target = ["--registry-target", client.target]
    listed = _cli("checkpoints", *target, "list")
    assert "v1 *" in listed.stdout and "not promoted" not in listed.stdout  # v1 was promoted by hand since
    assert "rolled back (operator)" in listed.stdout and "the learner services follow v1" in listed.stderr
    rolled = _cli("checkpoints", *target, "rollback", "--reason", "collapsed online")
    assert rolled.returncode == 0 and "v1 rolled back: the learner services follow the base model" in rolled.stderr
    assert registry.get("v1").promotion.reason == "collapsed online"
    assert _eventually(lambda: _learner(drift), "base") == "base"
    again = _cli("checkpoints", *target, "rollback", "v2")
    assert again.returncode == 1 and "only a promoted checkpoint can be rolled back" in again.stderr


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "learnerfit.cli", *args], capture_output=True, text=True,
                          timeout=120)


def _sample(i: int, checkpoint: str, right: bool) -> records_pb2.Trajectory:
    problem = records_pb2.Problem(id=f"live-{checkpoint}-{i}", question="Calculate 1 + 1.", reference_answer="2")
    trajectory = records_pb2.Trajectory(id=f"s-{checkpoint}-{i}", problem=problem, checkpoint=checkpoint,
                                        origin=records_pb2.ORIGIN_LEARNER_SAMPLE, text="Final answer: 2")
    trajectory.scores.verdict = records_pb2.VERDICT_CORRECT if right else records_pb2.VERDICT_INCORRECT
    return trajectory


def test_a_promoted_checkpoint_whose_fresh_samples_drop_is_rolled_back_and_the_followers_return(
        broker, tiny_solver, tmp_path):
    """The watch, on the trainer: v1 was promoted by the gate over the base model; the learner's own samples then
    show 0.50 under the base model and 0.11 under v1, so v1 is rolled back, announced, and a drift scorer started
    after it follows the base model. Nothing is trained: the samples are published as the scorers would."""
    from learnerfit.domain import topics

    registry_dir = tmp_path / "registry"
    source = tmp_path / "v1"
    source.mkdir()
    (source / "config.json").write_text("{}")
    gate = records_pb2.Promotion(state=PROMOTED, decided_by="gate", compared_with="base", reason="passed the gate")
    CheckpointRegistry(registry_dir).register(source, base_model=str(tiny_solver), kind=1, promotion=gate)
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    with running(REGISTRY, broker, prefix=prefix, registry_dir=str(registry_dir)) as (registry, _, bus), \
            running(TRAINER, broker, prefix=prefix, registry_dir=str(registry_dir), train_every=0,
                    train={"base_model": str(tiny_solver), "eval_problems": 0}) as _:
        # Fewer than watch_min_samples under v1 so far: nothing is decided yet.
        bus.publish((topics.SCORED, _sample(i, "base", i % 2 == 0)) for i in range(64))
        bus.publish((topics.SCORED, _sample(i, "v1", i % 10 == 0)) for i in range(40))
        time.sleep(3)
        assert CheckpointRegistry.reader(registry_dir).get("v1").promotion.state == PROMOTED
        bus.publish((topics.SCORED, _sample(i, "v1", i % 10 == 0)) for i in range(40, 80))
        assert _eventually(lambda: CheckpointRegistry.reader(registry_dir).get("v1").promotion.state,
                           ROLLED_BACK) == ROLLED_BACK
        with running(DRIFT_SCORER, broker, prefix=prefix, learner={"model": str(tiny_solver)},
                     registry={"target": registry.target}) as (_, drift, _):
            assert _learner(drift) == "base"
    rolled = CheckpointRegistry.reader(registry_dir).get("v1").promotion
    # Decided at v1's 64th sample (watch_min_samples), 7 of them right.
    assert rolled.decided_by == "watch" and rolled.compared_with == "base" and rolled.samples == 64
    assert rolled.accuracy == pytest.approx(7 / 64) and rolled.compared_accuracy == pytest.approx(0.5)
    assert "on its own fresh samples 0.109 (64) against base's 0.500 (64)" in rolled.reason
