"""The shared stage runner against a real broker: delivery, dead letters, commits after acknowledgement."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from learnerfit.runtime import metrics
from learnerfit.runtime.bus import ERROR_HEADER, ID_HEADER, SOURCE_HEADER, STAGE_HEADER, header
from learnerfit.runtime.runner import Stage, StageRunner
from learnerfit.v1 import records_pb2
from tests.kafka_helpers import read_topic


def _problem(i: int, question: str | None = None) -> records_pb2.Problem:
    return records_pb2.Problem(id=f"p{i}", batch_id="b", question=question or f"Calculate {i} + 1.",
                               reference_answer=str(i + 1))


def _solve_one(problem: records_pb2.Problem) -> records_pb2.Trajectory:
    if problem.question == "poison":
        raise ValueError("cannot solve poison")
    return records_pb2.Trajectory(id=f"t-{problem.id}", problem=problem, text=problem.reference_answer)


def _solve(problems):  # fails whole when any problem in it is bad, as a model call would
    return [_solve_one(p) for p in problems]


def _stage(name: str, source: str, sink: str, process=_solve) -> Stage:
    return Stage(name=name, consumes=[source], input_type=records_pb2.Problem, process=process,
                 routes={records_pb2.Trajectory: sink})


def _runner(stage: Stage, bus, group: str, dead: str) -> StageRunner:
    return StageRunner(stage, bus, group_id=group, dead_letter_topic=dead, max_batch=16, max_wait_s=0.2)


def _run_until(runner: StageRunner, count: int, timeout_s: float = 30.0) -> int:
    taken, deadline = 0, time.monotonic() + timeout_s
    while taken < count and time.monotonic() < deadline:
        taken += runner.step()
    return taken


def test_records_produced_by_one_stage_arrive_once_at_the_next(bus, fresh):
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=3)
    bus.publish((source, _problem(i)) for i in range(6))

    runner = _runner(_stage("solve", source, sink), bus, fresh("group"), dead)
    try:
        assert _run_until(runner, 6) == 6
        assert runner.step() == 0  # an idle round: nothing is taken twice
    finally:
        runner.close()

    out = read_topic(bus, sink, at_least=6)
    ids = sorted(header(r, ID_HEADER) for r in out)
    assert ids == sorted(f"t-p{i}" for i in range(6))
    # Keys are problem ids, so a problem's records share a partition.
    assert {r.key.decode() for r in out} == {f"p{i}" for i in range(6)}


def test_a_record_that_fails_goes_to_the_dead_letter_topic_with_its_reason_and_the_stage_goes_on(bus, fresh):
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=1)
    bus.publish([(source, _problem(1)), (source, _problem(2, "poison")), (source, _problem(3))])
    bus.producer.send(source, key=b"junk", value=b"\xff\xff not a protobuf").get(10)

    runner = _runner(_stage("solve", source, sink), bus, fresh("group"), dead)
    try:
        assert _run_until(runner, 4) == 4
    finally:
        runner.close()

    assert sorted(header(r, ID_HEADER) for r in read_topic(bus, sink, at_least=2)) == ["t-p1", "t-p3"]
    letters = read_topic(bus, dead, at_least=2)
    assert len(letters) == 2
    reasons = {r.key: header(r, ERROR_HEADER) for r in letters}
    assert "ValueError: cannot solve poison" in reasons[b"p2"]
    assert "undecodable" in reasons[b"junk"]
    assert all(header(r, STAGE_HEADER) == "solve" for r in letters)
    assert all(header(r, SOURCE_HEADER).startswith(f"{source}/0/") for r in letters)
    # The dead letter carries the original bytes, so it can be inspected or replayed.
    assert next(r for r in letters if r.key == b"junk").value == b"\xff\xff not a protobuf"


def test_a_failing_batch_is_retried_record_by_record_so_only_the_bad_record_is_dead_lettered(bus, fresh):
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=1)
    bus.publish((source, _problem(i, "poison" if i == 2 else None)) for i in range(4))

    runner = _runner(_stage("solve", source, sink), bus, fresh("group"), dead)
    try:
        assert _run_until(runner, 4) == 4
    finally:
        runner.close()
    assert sorted(header(r, ID_HEADER) for r in read_topic(bus, sink, at_least=3)) == ["t-p0", "t-p1", "t-p3"]
    assert [r.key for r in read_topic(bus, dead, at_least=1)] == [b"p2"]


# A solver process that publishes its outputs, says so, and is then SIGKILLed before it commits: a crash
# between publish and commit, in a process of its own.
_CRASHING_SOLVER = """
import sys, time
from learnerfit.runtime.bus import Bus
from learnerfit.runtime.runner import Stage, StageRunner
from learnerfit.v1 import records_pb2
servers, source, sink, dead, group, flag = sys.argv[1:]
bus = Bus(servers, client_id="crashing-solver", session_timeout_ms=6000)
def solve(problems):
    return [records_pb2.Trajectory(id=f"t-{p.id}", problem=p, text=p.reference_answer) for p in problems]
runner = StageRunner(Stage("solve", [source], records_pb2.Problem, solve, {records_pb2.Trajectory: sink}), bus,
                     group_id=group, dead_letter_topic=dead, max_batch=16, max_wait_s=0.2)
records = []
while not records:
    records = runner.poll()
outputs, letters = runner.process(records)
runner.publish(outputs, letters)
open(flag, "w").close()
time.sleep(600)  # killed here, holding the uncommitted input
"""


def test_a_solver_killed_between_publish_and_commit_replays_and_the_copy_is_a_recognised_duplicate(
        bus, broker, fresh, tmp_path):
    source, sink, final, dead = fresh("problems"), fresh("trajectories"), fresh("final"), fresh("dead")
    bus.ensure_topics([source, sink, final, dead], partitions=1)
    bus.publish([(source, _problem(7))])
    group, flag = fresh("solver"), tmp_path / "published"
    crashed = subprocess.Popen([sys.executable, "-c", _CRASHING_SOLVER, broker.bootstrap_servers, source, sink, dead,
                                group, str(flag)], cwd=os.getcwd())
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert crashed.poll() is None and time.monotonic() < deadline, "the solver never published"
        time.sleep(0.05)
    crashed.send_signal(signal.SIGKILL)
    crashed.wait()

    # Restarted in the same group, it gets the uncommitted record again and re-publishes.
    restarted = _runner(_stage("solve", source, sink), bus, group, dead)
    try:
        assert _run_until(restarted, 1, timeout_s=60) == 1
    finally:
        restarted.close()
    replayed = read_topic(bus, sink, at_least=2)
    assert [header(r, ID_HEADER) for r in replayed] == ["t-p7", "t-p7"]

    # Downstream, the second copy is recognised by its id and not processed again.
    seen: list[str] = []

    def passthrough(trajectories):
        seen.extend(t.id for t in trajectories)
        return list(trajectories)

    downstream = StageRunner(
        Stage(name="downstream", consumes=[sink], input_type=records_pb2.Trajectory, process=passthrough,
              routes={records_pb2.Trajectory: final}),
        bus, group_id=fresh("downstream"), dead_letter_topic=dead, max_batch=16, max_wait_s=0.5)
    duplicates_before = metrics.DUPLICATES.labels("downstream")._value.get()
    try:
        assert _run_until(downstream, 2) == 2
    finally:
        downstream.close()
    assert seen == ["t-p7"]
    assert metrics.DUPLICATES.labels("downstream")._value.get() == duplicates_before + 1
    assert len(read_topic(bus, final, at_least=1)) == 1


def test_the_restarted_solver_resumes_after_the_last_committed_record(bus, fresh):
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=1)
    group = fresh("solver")
    bus.publish([(source, _problem(1))])
    first = _runner(_stage("solve", source, sink), bus, group, dead)
    try:
        assert _run_until(first, 1) == 1
    finally:
        first.close()
    bus.publish([(source, _problem(2))])
    second = _runner(_stage("solve", source, sink), bus, group, dead)
    try:
        assert _run_until(second, 1) == 1
        assert second.step() == 0  # problem 1 was committed: not read again
    finally:
        second.close()
    assert sorted(header(r, ID_HEADER) for r in read_topic(bus, sink, at_least=2)) == ["t-p1", "t-p2"]
