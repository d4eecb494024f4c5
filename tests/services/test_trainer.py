"""The trainer service through a real broker and real gRPC: curated examples in, registered and announced
checkpoints out, whether training was triggered by enough examples or asked for by a Train call."""

from __future__ import annotations

import json
import time
import uuid

import grpc
import pytest

from learnerfit.domain import topics
from learnerfit.domain.prompts import training_messages
from learnerfit.v1 import records_pb2, services_pb2
from services.trainer import SPEC
from tests.kafka_helpers import dead_letters as letters_on_topic, read_topic
from tests.running import running


def _example(i: int, batch: str = "b1") -> records_pb2.CuratedExample:
    problem = records_pb2.Problem(id=f"p{i}", question=f"Calculate {i} + 1.")
    return records_pb2.CuratedExample(id=f"example-{i}", problem_id=problem.id, batch_id=batch,
                                      policy="rejection_sampling",
                                      messages=training_messages(problem, f"{i} + 1 = {i + 1}\nFinal answer: {i + 1}"))


def _relabelled(example: records_pb2.CuratedExample, policy: str) -> records_pb2.CuratedExample:
    copy = records_pb2.CuratedExample()
    copy.CopyFrom(example)
    copy.policy = policy
    return copy


def _wait_until(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def _held(batch_id: str, count: int) -> services_pb2.TrainRequest:
    return services_pb2.TrainRequest(batch=services_pb2.HeldBatch(batch_id=batch_id, min_examples=count))


def _given(examples, start_from: str = "") -> services_pb2.TrainRequest:
    return services_pb2.TrainRequest(given=services_pb2.ExampleSet(examples=examples), start_from=start_from)


def _trainer(broker, tiny_model, tmp_path, train=None, **overrides):
    return running(SPEC, broker, registry_dir=str(tmp_path / "registry"),
                   train={"base_model": str(tiny_model), "eval_problems": 2, "eval_k": 1, **(train or {})}, **overrides)


def test_curated_examples_train_register_and_announce_a_checkpoint_once_enough_arrived(broker, tiny_model, tmp_path):
    # The promotion gate off (tests/services/test_promotion.py has it on): followed unchecked.
    with _trainer(broker, tiny_model, tmp_path, train_every=3, promotion={"gate": False}) as (service, stub, bus):
        with pytest.raises(grpc.RpcError) as error:  # nothing arrived yet
            stub.Train(services_pb2.TrainRequest())
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error.value.details() == "no curated examples to train on"
        bus.publish((topics.CURATED, _example(i)) for i in range(2))
        # Waiting for a third: held, so the runner commits no offset past them.
        assert _wait_until(lambda: service.parts.stage.held.held_ids() == {"example-0", "example-1"})
        bus.publish([(topics.CURATED, _example(2))])
        announced = [records_pb2.Checkpoint.FromString(r.value)
                     for r in read_topic(bus, topics.CHECKPOINTS, at_least=1, timeout_s=120)]
        assert _wait_until(lambda: not service.parts.stage.held.held_ids())
    assert [c.version for c in announced] == ["v1"]
    assert sorted(announced[0].example_ids) == ["example-0", "example-1", "example-2"]
    assert set(announced[0].eval) == {"avg@1"} and announced[0].uri == str(tmp_path / "registry" / "checkpoints" / "v1")
    assert announced[0].promotion.state == records_pb2.PROMOTION_STATE_PROMOTED
    assert announced[0].promotion.decided_by == "unchecked" and "promotion.gate is off" in announced[0].promotion.reason


def test_training_on_its_own_with_a_held_out_set_too_small_for_the_gate_is_refused_at_start(broker, tiny_model,
                                                                                            tmp_path):
    from learnerfit.errors import InvalidInput

    with pytest.raises(InvalidInput) as error, _trainer(broker, tiny_model, tmp_path, train_every=3):
        pass
    assert error.value.field == "train.eval_problems"
    assert "2 held-out problems x eval_k 1 = 2 samples" in str(error.value) and "min_eval_samples = 64" in str(
        error.value)


def test_a_train_call_waits_for_its_batch_trains_and_announces_what_it_registered(broker, tiny_model, tmp_path):
    with _trainer(broker, tiny_model, tmp_path, train_every=0) as (service, stub, bus):
        bus.publish((topics.CURATED, _example(i, batch="round-1")) for i in range(2))
        reply = stub.Train(_held("round-1", 2), timeout=120)
        again = stub.Train(_held("round-1", 2), timeout=120)
        announced = [records_pb2.Checkpoint.FromString(r.value)
                     for r in read_topic(bus, topics.CHECKPOINTS, at_least=1, timeout_s=30)]
    assert reply.checkpoint.version == "v1" and sorted(reply.checkpoint.example_ids) == ["example-0", "example-1"]
    assert announced == [reply.checkpoint]
    assert again.checkpoint == reply.checkpoint, "asking again for a trained batch is answered, not trained twice"


def test_a_train_call_for_examples_that_never_arrive_fails_with_what_is_missing(broker, tiny_model, tmp_path):
    with _trainer(broker, tiny_model, tmp_path, train_every=0, wait_s=1.0) as (_, stub, _bus):
        with pytest.raises(grpc.RpcError) as error:
            stub.Train(_held("never", 3))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.value.details() == "batch never: 0 of 3 curated examples reached the trainer within 1s"


def test_given_examples_train_from_the_base_with_one_step_budget_and_evaluate_answers_for_base_and_checkpoint(
        broker, tiny_model, tmp_path):
    """A study's calls: each policy's set trained from the base (not from the checkpoint before it), on the same
    budget of optimizer steps, and the base model scored on the same held-out problems."""
    registry = tmp_path / "registry"
    given = [_example(i) for i in range(3)]
    with _trainer(broker, tiny_model, tmp_path, train_every=0,
                  train={"max_steps": 2, "learning_rate": 1e-2}) as (_, stub, _bus):
        first = stub.Train(_given(given, start_from="base"), timeout=120).checkpoint
        on_top = stub.Train(_given(given), timeout=120).checkpoint  # from v1
        again = stub.Train(_given(given, start_from="base"), timeout=120).checkpoint  # the same set, start, recipe
        relabelled = [_relabelled(e, "utility") for e in given]
        second = stub.Train(_given(relabelled, start_from="base"), timeout=120).checkpoint  # the same text
        base = stub.Evaluate(services_pb2.EvaluateRequest(), timeout=120)
        of_v1 = stub.Evaluate(services_pb2.EvaluateRequest(version="v1"), timeout=120)
        refused = {}
        for name, request in (("no examples", _given([])),
                              ("no batch id", _held("", 1)),
                              ("start without examples", services_pb2.TrainRequest(start_from="base")),
                              ("unknown start", _given(given, start_from="v9"))):
            with pytest.raises(grpc.RpcError) as error:
                stub.Train(request, timeout=60)
            refused[name] = (error.value.code(), error.value.details())
        with pytest.raises(grpc.RpcError) as error:
            stub.Evaluate(services_pb2.EvaluateRequest(version="latest"), timeout=60)
        # A study's own held-out problems: every judged sample comes back, with what the summary is made of.
        held_out = [records_pb2.Problem(id=f"h{i}", question=f"Calculate {i} + 1.", reference_answer=str(i + 1))
                    for i in (1, 2)]
        on_given = stub.Evaluate(services_pb2.EvaluateRequest(version="v1", problems=held_out, k=3, max_new_tokens=8),
                                 timeout=120)
        with pytest.raises(grpc.RpcError) as too_many:
            stub.Evaluate(services_pb2.EvaluateRequest(problems=held_out, k=100), timeout=60)
    assert [(s.problem_id, s.sample_index) for s in on_given.samples] == [(p.id, i) for p in held_out for i in range(3)]
    samples, answers = on_given.samples, {p.id: p.reference_answer for p in held_out}
    for sample in samples:
        assert 1 <= sample.token_count <= 8 and sample.truncated == (sample.token_count == 8)
        expected = (records_pb2.VERDICT_UNPARSED if not sample.answer else
                    records_pb2.VERDICT_CORRECT if sample.answer == answers[sample.problem_id] else None)
        assert expected is None or sample.verdict == expected, sample
    assert on_given.eval == pytest.approx({
        "avg@3": sum(s.verdict == records_pb2.VERDICT_CORRECT for s in samples) / 6,
        "unparsed": sum(s.verdict == records_pb2.VERDICT_UNPARSED for s in samples) / 6,
        "truncated": sum(s.truncated for s in samples) / 6,
        "parsed_accuracy": sum(s.verdict == records_pb2.VERDICT_CORRECT for s in samples)
        / max(1, sum(s.verdict != records_pb2.VERDICT_UNPARSED for s in samples)),
        "first_answer_accuracy": sum(s.first_correct for s in samples) / 6})
    for sample in samples:  # the first answer the text gives, judged on its own
        assert sample.first_correct == (sample.first_answer == answers[sample.problem_id]) or not sample.first_answer
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert too_many.value.details().startswith("evaluation.samples_per_problem: 100 samples, at most 64 allowed")
    # Asked again for what v1 is (a retry after a lost reply), the registry answers v1 (Register is idempotent).
    assert [first.version, on_top.version, again.version, second.version] == ["v1", "v2", "v1", "v3"]
    assert first.policy == "rejection_sampling" and sorted(first.example_ids) == [e.id for e in given]

    def probe(version: str) -> list[float]:
        return json.loads((registry / "checkpoints" / version / "probe.json").read_text())["logprobs"]

    def steps(version: str) -> int:
        return json.loads((registry / "checkpoints" / version / "train_metrics.json").read_text())["global_step"]

    # Same examples (under another policy's name), seed and start: the same model; trained on top of v1 another.
    assert probe("v3") == pytest.approx(probe("v1"), abs=1e-5)
    assert max(abs(a - b) for a, b in zip(probe("v2"), probe("v1"), strict=True)) > 1e-3
    assert [steps(v) for v in ("v1", "v2", "v3")] == [2, 2, 2]  # the budget, not one epoch of 3 examples (1 step)
    assert base.version == "base" and set(base.eval) == {"avg@1"} and set(of_v1.eval) == {"avg@1"}
    assert refused["no examples"] == (grpc.StatusCode.INVALID_ARGUMENT, "given.examples: must hold at least one example")
    assert refused["no batch id"] == (grpc.StatusCode.INVALID_ARGUMENT,
                                      "batch.batch_id: must name the batch whose examples to wait for")
    assert refused["start without examples"][0] == grpc.StatusCode.INVALID_ARGUMENT
    assert refused["unknown start"] == (grpc.StatusCode.NOT_FOUND, f"no checkpoint v9 in {registry}")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "latest" in error.value.details()


def test_replay_mixes_earlier_examples_of_the_learners_lineage_into_each_new_training(broker, tiny_model, tmp_path):
    from trainer.sft import read_examples

    # A consumer group of its own: on the broker the session shares, group "trainer" has just been rebalanced by the
    # tests before, and Tansu can leave a new member of it without its partition for minutes.
    with _trainer(broker, tiny_model, tmp_path, train_every=2, promotion={"gate": False}, train={"replay": 3},
                  stage={"group": f"trainer-{uuid.uuid4().hex[:8]}"}) as (service, _stub, bus):
        for first in (0, 2, 4):
            bus.publish((topics.CURATED, _example(i)) for i in (first, first + 1))
            read_topic(bus, topics.CHECKPOINTS, at_least=first // 2 + 1, timeout_s=120)
    registry = service.parts.stage.held.registry
    v1, v2, v3 = registry.list()
    trained = {c.version: sorted(e.id for e in read_examples(registry.path_of(c))) for c in (v1, v2, v3)}
    assert trained["v1"] == ["example-0", "example-1"] and v1.training.replayed == 0  # nothing earlier yet
    # v2: its two new examples and both of v1's (fewer than 3 exist); v3: its two and 3 of the 4 before it.
    assert trained["v2"] == ["example-0", "example-1", "example-2", "example-3"] and v2.training.replayed == 2
    assert sorted(v3.example_ids) == ["example-4", "example-5"] and v3.training.replayed == 3
    assert set(trained["v3"]) - {"example-4", "example-5"} < {f"example-{i}" for i in range(4)}
    assert len(trained["v3"]) == 5 and v3.training.start_from == "v2"


def test_a_failed_training_is_tried_again_on_its_own_after_a_backoff(broker, tiny_model, tmp_path):
    """The base model's weights missing when the trainer trains (a volume still being filled): the training fails,
    its examples stay held, and it is tried again after retry_initial_s, then twice that, without waiting for more
    examples to arrive. (The folder stays, so nothing mistakes its path for a model hub's name and goes online.)"""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights, away = model / "model.safetensors", tmp_path / "model.safetensors.away"
    # A consumer group of its own: a group an earlier test of this module left takes a session to hand over (Tansu).
    with _trainer(broker, model, tmp_path, train_every=2, retry_initial_s=1.0, promotion={"gate": False},
                  stage={"group": f"trainer-{uuid.uuid4().hex[:8]}"}) as (service, _stub, bus):
        trainer = service.parts.stage.process
        weights.rename(away)
        bus.publish((topics.CURATED, _example(i)) for i in range(2))
        assert _wait_until(lambda: trainer.failed_in_a_row >= 1, timeout_s=60), "the training did not fail"
        assert service.parts.stage.held.held_ids() == {"example-0", "example-1"}  # held, not committed past
        away.rename(weights)
        announced = [records_pb2.Checkpoint.FromString(r.value)
                     for r in read_topic(bus, topics.CHECKPOINTS, at_least=1, timeout_s=120)]
        assert _wait_until(lambda: not service.parts.stage.held.held_ids())
    assert [c.version for c in announced] == ["v1"]
    assert sorted(announced[0].example_ids) == ["example-0", "example-1"]


def test_a_training_that_keeps_failing_dead_letters_its_examples_which_a_replay_trains_on(broker, tiny_model,
                                                                                            tmp_path):
    """After max_tries the held examples become dead letters with the reason and are let go (the commit moves on);
    once the cause is fixed, replaying them trains them, in the same process."""
    import shutil

    from learnerfit.cli.dead_letters import dead_letters, replay

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights, away = model / "model.safetensors", tmp_path / "model.safetensors.away"
    with _trainer(broker, model, tmp_path, train_every=2, retry_initial_s=0.2, max_tries=2, promotion={"gate": False},
                  stage={"group": f"trainer-{uuid.uuid4().hex[:8]}"}) as (service, _stub, bus):
        weights.rename(away)
        bus.publish((topics.CURATED, _example(i)) for i in range(2))
        letters = letters_on_topic(bus, at_least=2, timeout_s=60)
        assert sorted(letter.record_id for letter in letters) == ["example-0", "example-1"]
        assert all("training failed 2 times in a row" in letter.reason and letter.stage == "trainer"
                   for letter in letters)
        assert _wait_until(lambda: not service.parts.stage.held.held_ids())  # let go: the commit moves on
        away.rename(weights)
        for letter in dead_letters(bus):
            replay(bus, letter)
        announced = [records_pb2.Checkpoint.FromString(r.value)
                     for r in read_topic(bus, topics.CHECKPOINTS, at_least=1, timeout_s=120)]
    assert [c.version for c in announced] == ["v1"]
    assert sorted(announced[0].example_ids) == ["example-0", "example-1"]
