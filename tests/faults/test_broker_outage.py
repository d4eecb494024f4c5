"""The broker gone for a while, made to happen while work is in hand: the broker process is frozen (SIGSTOP, its
connections hang as a dead host's would, nothing of its data is lost) and thawed (SIGCONT) later.

A stage waits a short outage out and publishes; one past its retry budget dead-letters its inputs as transient once
it can, and never ends. The gateway answers UNAVAILABLE while the broker is away, before the caller's deadline, and
the same call succeeds once it is back.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager

import grpc
import pytest
from kafka import KafkaConsumer, TopicPartition

from learnerfit.domain import topics
from learnerfit.local.broker import TansuBroker
from learnerfit.local.s3 import S3Server
from learnerfit.runtime.bus import ID_HEADER, Bus, header
from learnerfit.runtime.runner import RetryPolicy, StageRunner
from learnerfit.runtime.stage import Stage, StageLogic, StageSpec
from learnerfit.v1 import records_pb2, services_pb2
from services.gateway import SPEC as GATEWAY
from tests.kafka_helpers import dead_letters, read_topic
from tests.running import running


@pytest.fixture()
def own_broker():
    """A broker of this test's own: freezing the session's broker would stall every other test on it."""
    with TansuBroker() as broker:
        yield broker


@contextmanager
def frozen(broker: TansuBroker, for_s: float):
    """Freezes the broker now and thaws it after for_s (or when the block ends, whichever is first)."""
    os.kill(broker.process.pid, signal.SIGSTOP)
    thaw = threading.Timer(for_s, os.kill, (broker.process.pid, signal.SIGCONT))
    thaw.start()
    try:
        yield
    finally:
        thaw.cancel()
        os.kill(broker.process.pid, signal.SIGCONT)


def _committed(broker: TansuBroker, group: str, topic: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()


def _problem(i: int) -> records_pb2.Problem:
    return records_pb2.Problem(id=f"p{i}", batch_id="b", question=f"Calculate {i} + 1.", reference_answer=str(i + 1))


def _solving_stage(source: str, sink: str, during_processing) -> Stage:
    def solve(problems):
        during_processing(problems)  # the outage starts while the stage holds these inputs
        return [records_pb2.Trajectory(id=f"t-{p.id}", problem=p, text=p.reference_answer) for p in problems]
    return Stage("solve", StageSpec(consumes=[source], input_type=records_pb2.Problem,
                                    produces={records_pb2.Trajectory: sink}), StageLogic(solve))


def _outage_trial(broker: TansuBroker, outage_s: float, budget_s: float):
    """Four problems through a stage whose processing freezes the broker for outage_s; returns (step's result,
    output ids, dead letters by problem)."""
    bus = Bus(broker.bootstrap_servers, client_id="outage-trial", session_timeout_ms=6000, publish_timeout_s=1.0)
    source, sink, dead = "problems", "trajectories", "dead-letter"
    bus.ensure_topics([source, sink, dead], partitions=1)
    bus.publish((source, _problem(i)) for i in range(4))
    outages = []

    def freeze_once(_problems):
        if not outages:
            outages.append(frozen(broker, outage_s))
            outages[0].__enter__()

    runner = StageRunner(_solving_stage(source, sink, freeze_once), bus, group_id="solvers", dead_letter_topic=dead,
                         max_batch=4, max_wait_s=0.5, retry=RetryPolicy(budget_s=budget_s, initial_s=0.2, max_s=1.0))
    taken = 0
    try:
        deadline = time.monotonic() + 60
        while taken < 4 and time.monotonic() < deadline:
            taken += runner.step()  # never raises for an outage
    finally:
        runner.close()
        if outages:
            outages[0].__exit__(None, None, None)
    assert outages, "the stage never processed the problems"
    outputs = {header(r, ID_HEADER) for r in read_topic(bus, sink, at_least=0, timeout_s=5)}
    letters = {letter.problem_id: letter for letter in dead_letters(bus, dead, timeout_s=5)}
    bus.close()
    return taken, outputs, letters


def test_a_stage_waits_out_an_outage_shorter_than_its_retry_budget_and_publishes(own_broker):
    taken, outputs, letters = _outage_trial(own_broker, outage_s=3.0, budget_s=60.0)
    assert taken == 4
    assert outputs == {f"t-p{i}" for i in range(4)}
    assert letters == {}


def test_past_its_retry_budget_a_stage_dead_letters_its_inputs_as_transient_and_goes_on(own_broker):
    taken, outputs, letters = _outage_trial(own_broker, outage_s=6.0, budget_s=1.0)
    assert taken == 4
    # Nothing lost: every problem is dead-lettered, to be replayed, and says why.
    assert sorted(letters) == [f"p{i}" for i in range(4)]
    assert all(letter.transient and "outputs not published" in letter.reason for letter in letters.values())
    # Outputs the producer still had on their way may have arrived too; a replay makes the same ids.
    assert outputs <= {f"t-p{i}" for i in range(4)}


def test_submit_batch_is_unavailable_while_the_broker_is_away_and_the_same_call_succeeds_after(own_broker):
    with running(GATEWAY, own_broker, bus={"publish_timeout_s": 2.0}) as (_service, stub, bus):
        stub.SubmitBatch(services_pb2.SubmitBatchRequest(problems=[records_pb2.Problem(
            question="Calculate 9 + 9.", reference_answer="18")]))  # the gateway has met the broker
        request = services_pb2.SubmitBatchRequest(problems=[
            records_pb2.Problem(question=f"Calculate {i} + 2.", reference_answer=str(i + 2)) for i in range(5)])
        with frozen(own_broker, for_s=30):
            with pytest.raises(grpc.RpcError) as refused:
                # The deadline is what a client would set; an answer after it would be DEADLINE_EXCEEDED.
                stub.SubmitBatch(request, timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
            assert "bus.publish_timeout_s" in refused.value.details()
        reply = None
        for _ in range(20):  # the client's retry policy, as the status code asks
            try:
                reply = stub.SubmitBatch(request, timeout=10)
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                time.sleep(1)
        assert reply is not None and reply.status.problems == 5
        published = [records_pb2.Problem.FromString(r.value)
                     for r in read_topic(bus, topics.PROBLEMS, at_least=6, timeout_s=15)]
        # Every problem of the batch is there; a copy the frozen broker took before the refusal has the same id.
        assert {p.id for p in published if p.batch_id == reply.batch_id} == set(reply.problem_ids)


def test_a_broker_killed_mid_work_and_restarted_on_its_storage_loses_nothing(tmp_path):
    """Tansu on S3 storage (s3rver) is SIGKILLed while a stage holds four problems, and restarted on the same port
    and storage 3 s later: what was on the topics is still there, the stage publishes every output, nothing is
    dead-lettered, and its consumer group's committed position survives a further restart (a new member reads
    nothing again)."""
    with S3Server(tmp_path / "s3") as storage:
        broker = TansuBroker(storage=storage).start()
        restarts: list[threading.Thread] = []

        def kill_once():
            if not restarts:
                broker.kill()
                restart = threading.Timer(3.0, broker.start)
                restart.start()
                restarts.append(restart)

        processed: list[str] = []

        def during_processing(problems):
            processed.extend(p.id for p in problems)
            kill_once()

        try:
            bus = Bus(broker.bootstrap_servers, client_id="restart-trial", session_timeout_ms=6000,
                      publish_timeout_s=2.0)
            bus.ensure_topics(["problems", "trajectories", "dead-letter"], partitions=1)
            bus.publish(("problems", _problem(i)) for i in range(4))
            stage = _solving_stage("problems", "trajectories", during_processing)
            runner = StageRunner(stage, bus, group_id="solvers", dead_letter_topic="dead-letter", max_batch=4,
                                 max_wait_s=0.5, retry=RetryPolicy(budget_s=60, initial_s=0.2, max_s=1.0))
            taken, deadline = 0, time.monotonic() + 90
            try:
                while taken < 4 and time.monotonic() < deadline:
                    taken += runner.step()
                restarts[0].join()
                # Running on, as a service does: the restarted broker forgot the group's members, so the runner
                # rejoins, reads its inputs again (dropped as duplicates by id) and commits past them.
                while _committed(broker, "solvers", "problems") != 4 and time.monotonic() < deadline:
                    runner.step()
            finally:
                runner.close()
            assert _committed(broker, "solvers", "problems") == 4
            # The group's committed position is on the storage too: killed and restarted once more, a new member
            # of the group (a restarted service) reads nothing again.
            broker.kill()
            broker.start()
            again = StageRunner(stage, bus, group_id="solvers", dead_letter_topic="dead-letter", max_batch=4,
                                max_wait_s=0.5, retry=RetryPolicy(budget_s=60, initial_s=0.2, max_s=1.0))
            try:
                for _ in range(10):
                    again.step()
            finally:
                again.close()
            assert taken == 4 and sorted(processed) == [f"p{i}" for i in range(4)]
            assert {header(r, ID_HEADER) for r in read_topic(bus, "trajectories", at_least=4)} == \
                {f"t-p{i}" for i in range(4)}
            assert len(read_topic(bus, "problems", at_least=4)) == 4  # the records from before the kill
            assert dead_letters(bus, "dead-letter", timeout_s=3) == []
            bus.close()
        finally:
            broker.stop()


def test_with_the_whole_stack_a_batch_refused_while_the_broker_is_away_is_taken_and_completes_once_it_is_back(
        stack, reference):
    """The shared tiny stack's broker frozen: SubmitBatch answers UNAVAILABLE within the client's 5 s; thawed, the
    same call is taken, every service rides the outage out (none exits), and the batch comes out as the fault-free
    run's: nothing lost, nothing decided twice."""
    from learnerfit.local.processes import channel
    from learnerfit.v1 import services_pb2_grpc
    from tests.faults.batches import PROBLEMS, SAMPLES, problems, tally, wait_complete

    request = services_pb2.SubmitBatchRequest(
        problems=problems(f"outage-{time.time_ns()}"),
        sampling=records_pb2.SamplingSpec(samples_per_problem=SAMPLES, max_new_tokens=16, seed=3),
        oracle_modes=[records_pb2.ORACLE_MODE_REFINE])
    with channel(stack.state.gateway) as ch:
        gateway = services_pb2_grpc.GatewayStub(ch)
        with frozen(stack.broker, for_s=20):
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as refused:
                gateway.SubmitBatch(request, timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
            assert time.monotonic() - started < 5
        reply, deadline = None, time.monotonic() + 60
        while reply is None:
            try:
                reply = gateway.SubmitBatch(request, timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, exc.details()
                time.sleep(1)
    assert reply.status.problems == PROBLEMS
    wait_complete(stack, reply.batch_id)
    stack.check_alive()
    got = tally(stack, reply.batch_id)
    assert (got["lost"], got["duplicated"], got["contradicting"], got["decision_copies"]) == (0, 0, 0, 0), got
    assert got["decided"] == PROBLEMS and got["curated"] == reference["curated"]
