"""The "adding a stage" how-to (docs/architecture.md), followed: a stage is one function and one declaration; the runtime reads its
topics off the declaration, creates them, runs the stage loop, serves its gRPC API and documents it in --help."""

from __future__ import annotations

from typing import ClassVar

from learnerfit.domain import topics
from learnerfit.runtime.app import describe
from learnerfit.runtime.settings import ServiceSettings, StageSettings
from learnerfit.runtime.spec import Context, Parts, ServiceSpec
from learnerfit.runtime.stage import StageLogic, StageSpec
from learnerfit.v1 import records_pb2, services_pb2
from tests.kafka_helpers import read_topic
from tests.running import running


class EchoSettings(ServiceSettings):
    """Echo: one learner sample per problem, the problem's reference answer."""

    service_name: ClassVar[str] = "echo"
    stage: StageSettings = StageSettings(max_batch=4)


def echo(problems):
    return [records_pb2.Trajectory(id=f"echo-{p.id}", problem=p, text=f"Final answer: {p.reference_answer}")
            for p in problems]


def build(settings: EchoSettings, context: Context) -> Parts:
    return Parts(rpcs={"Generate": lambda request: services_pb2.GenerateResponse(trajectories=echo(request.problems))},
                 stage=StageLogic(echo))


SPEC = ServiceSpec(name="echo", settings=EchoSettings, api=services_pb2.DESCRIPTOR.services_by_name["Generator"],
                   build=build, stage=StageSpec(consumes=[topics.PROBLEMS], input_type=records_pb2.Problem,
                                                produces={records_pb2.Trajectory: topics.TRAJECTORIES}))


def test_a_new_stage_runs_from_its_spec_over_kafka_and_grpc(broker):
    problems = [records_pb2.Problem(id=f"p{i}", question=f"Calculate {i} + 1.", reference_answer=str(i + 1))
                for i in range(3)]
    with running(SPEC, broker) as (_, stub, bus):
        bus.publish((topics.PROBLEMS, p) for p in problems)
        out = [records_pb2.Trajectory.FromString(r.value) for r in read_topic(bus, topics.TRAJECTORIES, at_least=3)]
        direct = stub.Generate(services_pb2.GenerateRequest(problems=problems[:1])).trajectories
    assert sorted(t.text for t in out) == ["Final answer: 1", "Final answer: 2", "Final answer: 3"]
    assert [t.id for t in direct] == ["echo-p0"]
    assert "consumes: problems" in describe(SPEC) and "LEARNERFIT_STAGE__MAX_BATCH" in describe(SPEC)
