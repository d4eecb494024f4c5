"""The shared stage runner against a real broker: delivery, dead letters, transient retries, commits after
acknowledgement, replicas through a rebalance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from learnerfit.domain.intake import IntakeLimits, record_check
from learnerfit.errors import Unavailable
from learnerfit.runtime import metrics
from learnerfit.runtime.bus import ID_HEADER, TYPE_HEADER, header
from learnerfit.runtime.runner import RetryPolicy, StageRunner
from learnerfit.runtime.stage import Stage, StageLogic, StageSpec
from learnerfit.v1 import records_pb2
from tests.kafka_helpers import dead_letters, read_topic


def _problem(i: int, question: str | None = None) -> records_pb2.Problem:
    return records_pb2.Problem(id=f"p{i}", batch_id="b", question=question or f"Calculate {i} + 1.",
                               reference_answer=str(i + 1))


def _solve_one(problem: records_pb2.Problem) -> records_pb2.Trajectory:
    if problem.question == "poison":
        raise ValueError("cannot solve poison")
    return records_pb2.Trajectory(id=f"t-{problem.id}", problem=problem, text=problem.reference_answer)


def _solve(problems):  # fails whole when any problem in it is bad, as a model call would
    return [_solve_one(p) for p in problems]


def _stage(name: str, source: str, sink: str, process=_solve, check=None) -> Stage:
    return Stage(name, StageSpec(consumes=[source], input_type=records_pb2.Problem,
                                 produces={records_pb2.Trajectory: sink}),
                 StageLogic(process, check=check))


def _runner(stage: Stage, bus, group: str, dead: str, retry: RetryPolicy = RetryPolicy()) -> StageRunner:
    return StageRunner(stage, bus, group_id=group, dead_letter_topic=dead, max_batch=16, max_wait_s=0.2, retry=retry)


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
    letters = {letter.problem_id: letter for letter in dead_letters(bus, dead, at_least=2)}
    assert sorted(letters) == ["junk", "p2"]
    assert "ValueError: cannot solve poison" in letters["p2"].reason
    assert "undecodable" in letters["junk"].reason
    assert not any(letter.transient for letter in letters.values())  # bad records: dead-lettered at once
    assert letters["p2"].attempts == 1
    assert {letter.stage for letter in letters.values()} == {"solve"}
    assert {letter.source_topic for letter in letters.values()} == {source}
    assert letters["p2"].record_id == "p2" and letters["p2"].record_type == "learnerfit.v1.Problem"
    # The dead letter carries the original bytes, so it can be inspected or replayed.
    assert letters["junk"].value == b"\xff\xff not a protobuf"
    assert records_pb2.Problem.FromString(letters["p2"].value).question == "poison"


def test_a_stage_routing_to_a_topic_its_spec_does_not_declare_is_stopped_there(bus, fresh):
    """A bug, like an output type with no route: the step fails loudly (the service stops, its supervisor sees why),
    nothing reaches the undeclared topic and nothing is committed."""
    source, sink, stray, dead = fresh("problems"), fresh("trajectories"), fresh("stray"), fresh("dead")
    bus.ensure_topics([source, sink, stray, dead], partitions=1)
    bus.publish([(source, _problem(1)), (source, _problem(2))])
    stage = Stage("solve", StageSpec(consumes=[source], input_type=records_pb2.Problem,
                                     produces={records_pb2.Trajectory: sink}),
                  StageLogic(_solve, route=lambda t: stray if t.problem.id == "p2" else None))  # p2: undeclared
    runner = _runner(stage, bus, fresh("group"), dead)
    try:
        with pytest.raises(TypeError, match=f"to {stray!r}, a topic its spec does not declare"):
            _run_until(runner, 2)
    finally:
        runner.close()
    assert read_topic(bus, stray) == [] and read_topic(bus, sink) == []


def test_poison_records_are_dead_lettered_once_each_and_nothing_else_is_delayed_or_lost(bus, fresh):
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=1)
    bus.publish((source, _problem(i)) for i in range(3))
    wrong_type = records_pb2.CurationDecision(id="d1", problem_id="wrong-type")
    bus.producer.send(source, key=b"wrong-type", value=wrong_type.SerializeToString(),
                      headers=[(TYPE_HEADER, b"learnerfit.v1.CurationDecision")]).get(10)
    # Field 3 (question) as a length-delimited string holding invalid UTF-8.
    bus.producer.send(source, key=b"bad-utf8", value=b"\x1a\x02\xff\xfe").get(10)
    bus.producer.send(source, key=b"random", value=os.urandom(64) + b"\xff\xff\xff").get(10)
    bus.publish([(source, _problem(9, "Calculate " + "9 + " * 3000 + "1."))])  # over max_question_chars
    bus.publish((source, _problem(i)) for i in range(3, 6))

    limits = IntakeLimits(max_question_chars=1000)
    runner = _runner(_stage("solve", source, sink, check=record_check(limits)), bus, fresh("group"), dead)
    try:
        assert _run_until(runner, 10) == 10
        assert runner.step() == 0
    finally:
        runner.close()
    assert sorted(header(r, ID_HEADER) for r in read_topic(bus, sink, at_least=6)) == [f"t-p{i}" for i in range(6)]
    letters = {letter.problem_id: letter for letter in dead_letters(bus, dead, at_least=4)}
    assert sorted(letters) == ["bad-utf8", "p9", "random", "wrong-type"]
    assert "CurationDecision" in letters["wrong-type"].reason
    assert "undecodable" in letters["bad-utf8"].reason
    assert "max_question_chars" in letters["p9"].reason and "problem.question" in letters["p9"].reason


class _FlakyBackEnd:
    """Down (Unavailable) for its first `down_for` calls, then answers: a back end restarting."""

    def __init__(self, down_for: int):
        self.down_for, self.calls = down_for, 0

    def __call__(self, problems):
        self.calls += 1
        if self.calls <= self.down_for:
            raise Unavailable("oracle endpoint refused the connection")
        return _solve(problems)


def test_a_transient_failure_is_retried_with_backoff_and_the_records_complete(bus, fresh):
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=1)
    bus.publish((source, _problem(i)) for i in range(4))
    flaky = _FlakyBackEnd(down_for=3)
    runner = _runner(_stage("solve", source, sink, flaky), bus, fresh("group"), dead,
                     RetryPolicy(budget_s=30, initial_s=0.05, max_s=0.2))
    try:
        assert _run_until(runner, 4) == 4
    finally:
        runner.close()
    assert flaky.calls == 4  # three refusals, then the whole batch at once: not split record by record
    assert sorted(header(r, ID_HEADER) for r in read_topic(bus, sink, at_least=4)) == [f"t-p{i}" for i in range(4)]
    assert read_topic(bus, dead, timeout_s=1) == []


def test_a_back_end_down_past_the_retry_budget_dead_letters_its_records_as_transient(bus, fresh):
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=1)
    bus.publish((source, _problem(i)) for i in range(3))
    down = _FlakyBackEnd(down_for=10**6)
    runner = _runner(_stage("solve", source, sink, down), bus, fresh("group"), dead,
                     RetryPolicy(budget_s=1.0, initial_s=0.05, max_s=0.2))
    try:
        assert _run_until(runner, 3) == 3
        assert runner.step() == 0  # given up on and committed: not read again
    finally:
        runner.close()
    letters = dead_letters(bus, dead, at_least=3)
    assert sorted(letter.problem_id for letter in letters) == ["p0", "p1", "p2"]
    assert all(letter.transient and "Unavailable" in letter.reason for letter in letters)
    assert all(letter.attempts > 2 for letter in letters)
    assert down.calls == letters[0].attempts  # the batch was tried as one, never record by record


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
from learnerfit.runtime.runner import StageRunner
from learnerfit.runtime.stage import Stage, StageLogic, StageSpec
from learnerfit.v1 import records_pb2
servers, source, sink, dead, group, flag = sys.argv[1:]
bus = Bus(servers, client_id="crashing-solver", session_timeout_ms=6000)
def solve(problems):
    return [records_pb2.Trajectory(id=f"t-{p.id}", problem=p, text=p.reference_answer) for p in problems]
runner = StageRunner(Stage("solve", StageSpec([source], records_pb2.Problem, {records_pb2.Trajectory: sink}),
                           StageLogic(solve)), bus,
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
        Stage("downstream", StageSpec(consumes=[sink], input_type=records_pb2.Trajectory,
                                      produces={records_pb2.Trajectory: final}), StageLogic(passthrough)),
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


class _Pairing:
    """A stateful stage: holds each problem until its partner (p0 with p1) arrives, then emits the pair."""

    def __init__(self):
        self.held: dict[str, records_pb2.Problem] = {}
        self.released: set[str] = set()

    def __call__(self, problems):
        for problem in problems:
            self.held[problem.id] = problem
        if {"p0", "p1"} <= self.held.keys():
            del self.held["p0"], self.held["p1"]
            return [records_pb2.Trajectory(id="t-pair", problem=_problem(0), text="p0+p1")]
        return []

    def held_ids(self) -> set[str]:
        return set(self.held)

    def release(self, ids: set[str]) -> None:
        self.released |= ids
        for problem_id in ids:
            self.held.pop(problem_id, None)


def test_a_held_input_released_in_a_rebalance_is_taken_again_when_its_partition_comes_back(bus, fresh):
    """A replica that lets a held input go in a rebalance and gets the partition back must read the input again and
    take it, not skip past it (kafka-python keeps the fetch position of a partition given straight back) nor drop it
    as a duplicate of what it once saw: else its problem is never decided. Seen in the replicas fault test."""
    source, sink, dead, group = fresh("problems"), fresh("pairs"), fresh("dead"), fresh("group")
    bus.ensure_topics([source, sink, dead], partitions=1)

    def pairing_stage(pairing: _Pairing) -> Stage:
        return Stage("pair", StageSpec(consumes=[source], input_type=records_pb2.Problem,
                                       produces={records_pb2.Trajectory: sink}),
                     StageLogic(pairing, held=pairing))

    pairing = _Pairing()
    first = _runner(pairing_stage(pairing), bus, group, dead)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [first.step() for _ in iter(stop.is_set, True)], daemon=True)
    try:
        bus.publish([(source, _problem(0))])
        assert _run_until(first, 1) == 1 and pairing.held_ids() == {"p0"}
        thread.start()  # the first replica keeps polling, as a service does, through the rebalances below
        second = _runner(pairing_stage(_Pairing()), bus, group, dead)
        deadline = time.monotonic() + 90
        while not pairing.released:  # the second replica's join revokes the first's partition: p0 let go
            assert time.monotonic() < deadline, "the second replica's join did not rebalance the group"
            second.step()
        second.step()
        second.close()  # the partition comes back to the first replica (if the second had it)
        while "p0" not in pairing.held_ids():
            assert time.monotonic() < deadline, "p0 was not taken again after its partition came back"
            time.sleep(0.1)
        bus.publish([(source, _problem(1))])
        pairs = read_topic(bus, sink, at_least=1, timeout_s=30)
        assert [r.value for r in pairs] == [records_pb2.Trajectory(id="t-pair", problem=_problem(0),
                                                                   text="p0+p1").SerializeToString()]
    finally:
        stop.set()
        thread.join(timeout=30)
        first.close()


def test_an_output_over_the_record_size_limit_dead_letters_only_its_input(bus, fresh):
    """The broker would refuse it every time: retrying cannot help, so it is a dead letter, not a crash-loop."""
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=1)
    bus.max_record_bytes = 4096
    bus.publish((source, _problem(i)) for i in range(3))

    def solve(problems):
        return [records_pb2.Trajectory(id=f"t-{p.id}", problem=p, text="x" * (8000 if p.id == "p1" else 10))
                for p in problems]

    runner = _runner(_stage("solve", source, sink, process=solve), bus, fresh("group"), dead)
    try:
        assert _run_until(runner, 3) == 3
    finally:
        runner.close()
    assert sorted(header(r, ID_HEADER) for r in read_topic(bus, sink, at_least=2)) == ["t-p0", "t-p2"]
    [letter] = dead_letters(bus, dead, at_least=1)
    assert letter.problem_id == "p1" and not letter.transient
    assert "at most 4096 allowed (setting bus.max_record_bytes)" in letter.reason


def test_after_a_partition_assignment_the_stage_catches_up_before_it_processes_what_it_read(bus, fresh):
    """A stateful stage (the curator) folds another replica's newest decisions before it decides anything of the
    partitions it was given: `ready` is asked, until it says yes, between the assignment and the processing."""
    source, sink, dead = fresh("problems"), fresh("trajectories"), fresh("dead")
    bus.ensure_topics([source, sink, dead], partitions=1)
    bus.publish((source, _problem(i)) for i in range(2))
    events: list[str] = []
    answers = iter([False, False, True])

    def ready() -> bool:
        events.append("ready")
        return next(answers, True)

    def solve(problems):
        events.append("process")
        return _solve(problems)

    runner = StageRunner(_stage("solve", source, sink, process=solve), bus, group_id=fresh("group"),
                         dead_letter_topic=dead, max_batch=16, max_wait_s=0.2, ready=ready)
    try:
        assert _run_until(runner, 2) == 2
    finally:
        runner.close()
    assert events[:4] == ["ready", "ready", "ready", "process"]
