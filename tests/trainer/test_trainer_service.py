"""The trainer service's stage through a real broker: curated examples in, a registered checkpoint out."""

from __future__ import annotations

import grpc
import pytest

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common import topics
from services.common.bus import Bus
from services.common.grpc_runtime import GrpcServer, channel
from services.common.prompts import training_messages
from services.common.stage_runner import StageRunner
from services.trainer.__main__ import build
from services.trainer.settings import TrainerSettings
from tests.kafka_helpers import read_topic


def _example(i: int) -> records_pb2.CuratedExample:
    problem = records_pb2.Problem(id=f"p{i}", question=f"Calculate {i} + 1.")
    return records_pb2.CuratedExample(id=f"example-{i}", problem_id=problem.id, policy="rejection_sampling",
                                      messages=training_messages(problem, f"{i} + 1 = {i + 1}\nFinal answer: {i + 1}"))


def test_curated_examples_train_and_register_a_checkpoint_once_enough_arrived(broker, fresh, tiny_model, tmp_path):
    settings = TrainerSettings(bootstrap_servers=broker.bootstrap_servers, base_model=str(tiny_model),
                               registry_dir=tmp_path / "registry", train_every=3, eval_problems=2, eval_k=1,
                               curated_topic=fresh("curated"), checkpoints_topic=fresh("checkpoints"))
    bus = Bus(broker.bootstrap_servers, client_id="trainer-test", session_timeout_ms=6000)
    parts = build(settings, bus)
    bus.ensure_topics(parts.topics + [topics.DEAD_LETTER], partitions=1)
    server = GrpcServer("127.0.0.1", 0, workers=2, max_message_bytes=1024 * 1024)
    server.add(parts.register, parts.service_names)
    server.start()
    runner = StageRunner(parts.stages[0], bus, group_id=fresh("trainer"), dead_letter_topic=topics.DEAD_LETTER,
                         max_batch=8, max_wait_s=0.2)
    try:
        with channel(f"127.0.0.1:{server.port}") as ch:
            with pytest.raises(grpc.RpcError) as error:  # nothing arrived yet
                services_pb2_grpc.TrainerStub(ch).Train(services_pb2.TrainRequest())
            assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        bus.confirm([bus.send(settings.curated_topic, _example(i)) for i in range(2)])
        for _ in range(20):
            runner.step()
        assert parts.stages[0].held_ids() == {"example-0", "example-1"}  # waiting for a third: held, not committed
        bus.confirm([bus.send(settings.curated_topic, _example(2))])
        for _ in range(40):
            runner.step()
            if not parts.stages[0].held_ids():
                break
        announced = [records_pb2.Checkpoint.FromString(r.value)
                     for r in read_topic(bus, settings.checkpoints_topic, at_least=1)]
    finally:
        runner.close()
        server.stop(0)
        bus.close()
    assert [c.version for c in announced] == ["v1"]
    assert sorted(announced[0].example_ids) == ["example-0", "example-1", "example-2"]
    assert set(announced[0].eval) == {"avg@1"}
