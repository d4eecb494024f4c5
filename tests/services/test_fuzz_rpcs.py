"""Every RPC of every service, fuzzed with hypothesis (arbitrary and boundary messages, tests/protobuf_strategies.py)
over real gRPC, with the service's loops running (its stage and followers, as in production): the only answers are
OK, INVALID_ARGUMENT naming a field, NOT_FOUND, RESOURCE_EXHAUSTED or FAILED_PRECONDITION; never UNKNOWN, INTERNAL,
a hang, or a server that stops answering; and an OK answer keeps its method's invariants (INVARIANTS).

Randomized: the seed is the day's unless FUZZ_SEED gives one, and it is in each test's id, so a failure can be
repeated. Limits are set low so that accepted requests stay cheap on a CPU and the limits themselves are hit."""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import grpc
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from services import curator, drift_scorer, gateway, generator, refiner, registry, reward_scorer, style_aligner, trainer
from learnerfit.v1 import records_pb2, services_pb2
from tests.fake_oracle import FakeOracle
from tests.protobuf_strategies import messages
from tests.running import running

ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED,
           grpc.StatusCode.FAILED_PRECONDITION}
LIMITS = {"max_problems_per_request": 3, "max_trajectories_per_request": 3, "max_samples_per_problem": 2,
          "max_new_tokens": 8, "max_text_chars": 2000, "max_question_chars": 2000}
EXAMPLES = 40
SEED = int(os.environ.get("FUZZ_SEED", str(int(time.time() // 86400))))
_FIELD = re.compile(r"^[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*: ")


@pytest.fixture(scope="module")
def oracle():
    server = FakeOracle()
    yield server
    server.close()


def _services(tiny_model, oracle, tmp_path_factory):
    """Each service's spec and settings for the fuzz run: tiny models, a scripted Oracle, low limits."""
    learner = {"model": str(tiny_model), "resume_newest": False}
    # What a request leaves unset is sampled as these say: within LIMITS, so an unset field is not itself a breach.
    sampling = {"samples_per_problem": 2, "max_new_tokens": 8}
    oracle_settings = {"backend": "openai", "model": "oracle-model", "endpoint": oracle.endpoint, "max_retries": 0}
    return {
        "gateway": (gateway.SPEC, {"intake": LIMITS, "sampling": sampling, "stream_idle_s": 0.2}),
        "generator": (generator.SPEC, {"learner": learner, "intake": LIMITS, "sampling": sampling}),
        "reward_scorer": (reward_scorer.SPEC, {"intake": LIMITS}),  # its reward model: the packaged MiniLM
        "drift_scorer": (drift_scorer.SPEC, {"learner": learner, "intake": LIMITS}),
        "refiner": (refiner.SPEC, {"oracle": oracle_settings, "intake": LIMITS}),
        "style_aligner": (style_aligner.SPEC, {"oracle": oracle_settings, "learner": learner, "intake": LIMITS,
                                               "repair_max_new_tokens": 8}),
        "curator": (curator.SPEC, {"intake": LIMITS}),
        # Train (given examples) and Evaluate run for real: on the tiny model, one step, one held-out sample.
        "trainer": (trainer.SPEC, {"registry_dir": str(tmp_path_factory.mktemp("trainer-registry")), "wait_s": 0.5,
                                   "train_every": 0, "train": {"base_model": str(tiny_model), "max_steps": 1,
                                                               "eval_problems": 1, "eval_k": 1}}),
        "registry": (registry.SPEC, {"registry_dir": str(tmp_path_factory.mktemp("registry"))}),
    }


def _well_formed(method):
    """A request every service should answer OK (or, for a name it does not know, NOT_FOUND)."""
    request = services_pb2.__dict__[method.input_type.name]()
    problem = records_pb2.Problem(id="p1", question="Calculate 1 + 1.", reference_answer="2")
    trajectory = records_pb2.Trajectory(id="t1", problem=problem, text="1 + 1 = 2\nFinal answer: 2",
                                        origin=records_pb2.ORIGIN_LEARNER_SAMPLE)
    trajectory.scores.verdict, trajectory.scores.ppl = records_pb2.VERDICT_CORRECT, 1.2
    given = {"Problem": problem, "Trajectory": trajectory}
    for field in method.input_type.fields:
        value = given.get(field.message_type.name) if field.message_type is not None else None
        if value is not None:
            (getattr(request, field.name).add() if field.is_repeated else getattr(request, field.name)).CopyFrom(value)
    mode = {"RefineRequest": records_pb2.ORACLE_MODE_REFINE, "AlignRequest": records_pb2.ORACLE_MODE_REWRITE}
    if method.input_type.name in mode:
        request.mode = mode[method.input_type.name]
    return request


def _same_ids(request, reply) -> None:
    """A scorer: one output per input, in order, the same trajectory."""
    assert [t.id for t in reply.trajectories] == [t.id for t in request.trajectories]


def _derived(request, reply) -> None:
    """An Oracle service: each output derives from a trajectory it was given."""
    given = {t.id for t in request.trajectories}
    assert all(t.parent_id in given for t in reply.trajectories), [t.parent_id for t in reply.trajectories]


def _curated(request, reply) -> None:
    """One decision per problem given; an example only for a decision that chose it, from the candidates given."""
    problems = {(t.problem.batch_id, t.problem.id) for t in request.trajectories}
    decided = [(d.batch_id, d.problem_id) for d in reply.decisions]
    assert sorted(decided) == sorted(problems)
    chosen = {d.chosen_trajectory_id for d in reply.decisions if d.curated}
    assert {e.trajectory_id for e in reply.examples} == chosen <= {t.id for t in request.trajectories}


def _submitted(request, reply) -> None:
    assert reply.batch_id and len(reply.problem_ids) == len(request.problems) == reply.status.problems
    assert reply.status.batch_id == reply.batch_id


def _generated(request, reply) -> None:
    questions = {p.question for p in request.problems}
    assert all(t.problem.question in questions for t in reply.trajectories)
    assert len({t.id for t in reply.trajectories}) == len(reply.trajectories)


def _listed(request, reply) -> None:
    assert len(reply.checkpoints) <= (request.page_size or 50)


INVARIANTS = {
    "SubmitBatch": _submitted,
    "GetBatch": lambda request, reply: reply.batch_id == request.batch_id or pytest.fail(reply.batch_id),
    "Generate": _generated,
    "ScoreTrajectories": _same_ids,
    "ScoreDrift": _same_ids,
    "Refine": _derived,
    "Align": _derived,
    "Curate": _curated,
    "Train": lambda request, reply: reply.checkpoint.version or pytest.fail("no version"),
    "GetCheckpoint": lambda request, reply: reply.version == request.version or pytest.fail(reply.version),
    "ListCheckpoints": _listed,
}


@pytest.mark.parametrize("name", ["gateway", "generator", "reward_scorer", "drift_scorer", "refiner", "style_aligner",
                                  "curator", "trainer", "registry"], ids=lambda name: f"{name}-seed{SEED}")
def test_every_rpc_answers_fuzzed_requests_with_a_status_a_client_can_act_on(name, tiny_model, oracle, broker,
                                                                           tmp_path_factory, reward_model_dir):
    spec, sections = _services(tiny_model, oracle, tmp_path_factory)[name]
    with running(spec, broker, **sections) as (_service, stub, _bus):
        methods = list(spec.api.methods)
        codes: Counter[str] = Counter()
        # Fuzzed requests, and for each method a well-formed one among them, so some calls reach the service's logic
        # (a fuzzed list of problems almost never passes intake: an empty or oversized question somewhere).
        strategy = st.one_of(*[st.tuples(st.just(m), st.one_of(messages(m.input_type), st.just(_well_formed(m))))
                               for m in methods])

        @seed(SEED)
        @settings(max_examples=EXAMPLES * len(methods), deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        @given(strategy)
        def call(method_and_request):
            method, request = method_and_request
            rpc = getattr(stub, method.name)

            try:
                if method.server_streaming:
                    for _ in rpc(request, timeout=30):
                        break  # a first item is enough: the stream answered
                else:
                    reply = rpc(request, timeout=60)
                    if method.name in INVARIANTS:
                        INVARIANTS[method.name](request, reply)
                codes["OK"] += 1
            except grpc.RpcError as error:
                codes[error.code().name] += 1
                assert error.code() in ALLOWED, f"{method.name}: {error.code().name}: {error.details()}"
                if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    assert _FIELD.match(error.details()), f"{method.name}: names no field: {error.details()}"

        call()
        print(name, f"seed {SEED}", dict(codes))
        # Not all turned away at the door: some calls got past validation into the service's logic.
        assert sum(n for code, n in codes.items() if code != "INVALID_ARGUMENT") > 0, codes
        # Still serving after all of it.
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from learnerfit.local.processes import channel

        with channel(_service.target) as ch:
            assert health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10).status == \
                health_pb2.HealthCheckResponse.SERVING
