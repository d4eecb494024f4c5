"""Which Oracle outputs a batch calls for, and the gateway's count of them (one definition for both)."""

from __future__ import annotations

from learnerfit.domain.batches import BatchLedger
from learnerfit.domain.oracle.selection import tasks
from learnerfit.v1 import records_pb2, runtime_pb2

CORRECT, INCORRECT, UNPARSED = records_pb2.VERDICT_CORRECT, records_pb2.VERDICT_INCORRECT, records_pb2.VERDICT_UNPARSED
ALL_MODES = [records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_SYNTHESIZE, records_pb2.ORACLE_MODE_REWRITE,
             records_pb2.ORACLE_MODE_REPAIR]


def _problem(modes=ALL_MODES, n=3):
    return records_pb2.Problem(id="p", batch_id="b", question="q", reference_answer="1", oracle_modes=modes,
                               sampling=records_pb2.SamplingSpec(samples_per_problem=n))


def _sample(problem, index, verdict, origin=records_pb2.ORIGIN_LEARNER_SAMPLE, rejection=None):
    return records_pb2.Trajectory(id=f"{origin}-{index}", problem=problem, origin=origin, sample_index=index,
                                  scores=records_pb2.Scores(verdict=verdict), rejection=rejection)


def test_tasks_follow_verdict_sample_index_and_what_the_batch_asked():
    problem = _problem()
    assert tasks(_sample(problem, 0, CORRECT)) == {records_pb2.ORACLE_MODE_REFINE, records_pb2.ORACLE_MODE_REWRITE,
                                                   records_pb2.ORACLE_MODE_SYNTHESIZE}
    assert tasks(_sample(problem, 1, INCORRECT)) == {records_pb2.ORACLE_MODE_REPAIR}
    assert tasks(_sample(problem, 2, UNPARSED)) == set()
    assert tasks(_sample(_problem(modes=[]), 0, CORRECT)) == set()
    assert tasks(_sample(problem, 0, CORRECT, origin=records_pb2.ORIGIN_ORACLE_REFINED)) == set()


def test_the_batch_completes_only_when_every_expected_oracle_output_is_in():
    ledger = BatchLedger()
    problem = _problem()
    ledger.apply(problem)
    for index, verdict in enumerate([CORRECT, INCORRECT, INCORRECT]):
        ledger.apply(_sample(problem, index, verdict))
    ledger.apply(records_pb2.CurationDecision(batch_id="b", problem_id="p", curated=False))
    status = ledger.status("b")
    # 1 correct x (refine + rewrite) + synthesize + one repair for the problem's wrong samples = 4
    assert status.oracle_expected == 4 and status.state == records_pb2.BATCH_STATE_RUNNING
    outputs = [_sample(problem, 10, CORRECT, records_pb2.ORIGIN_ORACLE_REFINED),
               _sample(problem, 11, CORRECT, records_pb2.ORIGIN_ORACLE_SYNTHESIZED),
               _sample(problem, 12, records_pb2.VERDICT_UNSPECIFIED, records_pb2.ORIGIN_STYLE_ALIGNED,
                       rejection=records_pb2.Rejection(guardrail="low_overlap", detail="kept 0.10"))]
    for output in outputs:
        ledger.apply(output)
    assert ledger.status("b").state == records_pb2.BATCH_STATE_RUNNING
    ledger.apply(_sample(problem, 13, INCORRECT, records_pb2.ORIGIN_STYLE_ALIGNED))
    status = ledger.status("b")
    assert (status.oracle_scored, status.oracle_rejected) == (3, 1)
    assert dict(status.oracle_rejections) == {"low_overlap": 1}
    assert status.state == records_pb2.BATCH_STATE_COMPLETE
    origins = {s.origin for s in status.summaries}
    assert records_pb2.ORIGIN_ORACLE_SYNTHESIZED in origins and records_pb2.ORIGIN_LEARNER_SAMPLE in origins


def _batch_records() -> list:
    """A whole batch as its topics hold it: 3 problems x 2 samples, one problem curated, one decided without an
    example, one failed at a stage (a dead letter, no decision)."""
    problems = [records_pb2.Problem(id=f"p{i}", batch_id="b", question=f"q{i}", reference_answer="1",
                                    batch_problems=3, sampling=records_pb2.SamplingSpec(samples_per_problem=2))
                for i in range(3)]
    records: list = list(problems)
    for problem in problems[:2]:
        for index, verdict in enumerate([CORRECT, INCORRECT]):
            records.append(records_pb2.Trajectory(id=f"{problem.id}-s{index}", problem=problem, sample_index=index,
                                                  origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                                  scores=records_pb2.Scores(verdict=verdict)))
    records += [records_pb2.CurationDecision(id="d0", batch_id="b", problem_id="p0", curated=True),
                records_pb2.CuratedExample(id="e0", batch_id="b", problem_id="p0"),
                records_pb2.CurationDecision(id="d1", batch_id="b", problem_id="p1", curated=False),
                runtime_pb2.DeadLetter(id="x", problem_id="p2", stage="generator", reason="poison", source_topic="problems",
                                       record_type="learnerfit.v1.Problem", value=problems[2].SerializeToString())]
    return records


def test_the_ledger_rebuilt_in_any_read_order_is_the_same_and_never_complete_early():
    """The gateway folds several topics and partitions, read in no set order: a dead letter may come before its
    problem, a decision before the last problem of its batch."""
    import random

    in_order = BatchLedger()
    for record in _batch_records():
        in_order.apply(record)
    expected = in_order.status("b")
    expected.ClearField("submitted_at")
    expected.ClearField("updated_at")
    assert expected.state == records_pb2.BATCH_STATE_COMPLETE and expected.problems_failed == 1
    for seed in range(200):
        records = _batch_records()
        random.Random(seed).shuffle(records)
        ledger = BatchLedger()
        for applied, record in enumerate(records, 1):
            ledger.apply(record)
            status = ledger.status("b")
            if applied < len(records):
                assert status is None or status.state == records_pb2.BATCH_STATE_RUNNING, (seed, applied)
        status = ledger.status("b")
        status.ClearField("submitted_at")
        status.ClearField("updated_at")
        assert status == expected, seed


def test_a_batch_whose_problems_expired_is_not_live_and_not_found():
    """Its decisions outlive its problems (a compacted topic against a 7-day retention): it can never finish, so it
    must not hold a place under max_live_batches."""
    ledger = BatchLedger()
    ledger.apply(records_pb2.CurationDecision(id="d", batch_id="old", problem_id="gone", curated=False))
    ledger.apply(_problem())
    assert ledger.sizes()["live_batches"] == 1  # "b", whose problem is there
    assert ledger.status("old") is None
    # It still holds memory until it is dropped (the gateway does, once its topics are read back): then its later
    # records are ignored, and the batch with problems is kept.
    assert ledger.sizes()["orphan_batches"] == 1
    assert ledger.drop_orphans(older_than_s=3600) == 0 and ledger.drop_orphans() == 1
    ledger.apply(records_pb2.CurationDecision(id="d2", batch_id="old", problem_id="gone2", curated=False))
    assert ledger.sizes()["orphan_batches"] == 0 and ledger.forgotten("old")
    assert ledger.status("b") is not None


def _letter(problem, index, origin=records_pb2.ORIGIN_LEARNER_SAMPLE, stage="reward_scorer", topic="trajectories"):
    sample = records_pb2.Trajectory(id=f"{problem.id}-{origin}-{index}", problem=problem, origin=origin,
                                    sample_index=index)
    return runtime_pb2.DeadLetter(id=f"{topic}/0/{index}", problem_id=problem.id, stage=stage, reason="poison",
                                  source_topic=topic, record_type="learnerfit.v1.Trajectory", record_id=sample.id,
                                  value=sample.SerializeToString())


def test_a_problem_fails_only_when_nothing_of_it_can_reach_the_curator():
    """One of its samples dead-lettered on the way: the curator still decides on the others once its wait runs
    out, so the batch is not complete before that decision. Every sample lost: failed at once. A lost Oracle
    output, or a sample the refiner gave up on (the curator has it), does not fail the problem."""
    problem = _problem(modes=[], n=2)
    ledger = BatchLedger()
    ledger.apply(problem)
    ledger.apply(_letter(problem, 0))
    ledger.apply(_letter(problem, 5, origin=records_pb2.ORIGIN_ORACLE_REFINED))
    ledger.apply(_letter(problem, 1, stage="refiner", topic="scored"))
    ledger.apply(_sample(problem, 1, CORRECT))
    status = ledger.status("b")
    assert status.state == records_pb2.BATCH_STATE_RUNNING and status.problems_failed == 0
    ledger.apply(records_pb2.CurationDecision(id="d", batch_id="b", problem_id="p", curated=False, timed_out=True))
    assert ledger.status("b").state == records_pb2.BATCH_STATE_COMPLETE

    lost = BatchLedger()
    lost.apply(problem)
    for index in range(2):
        lost.apply(_letter(problem, index))
    status = lost.status("b")
    assert status.state == records_pb2.BATCH_STATE_COMPLETE and status.problems_failed == 1
    assert status.failures[0].stage == "reward_scorer"


def test_finished_batches_are_let_go_past_a_bound_in_bytes_as_well_as_in_number():
    """A few batches with large curated examples fill the byte bound long before the count bound."""
    ledger = BatchLedger(keep_finished=1000, keep_finished_bytes=60_000)
    for b in range(5):
        problem = records_pb2.Problem(id=f"p{b}", batch_id=f"b{b}", question="q", reference_answer="1",
                                      sampling=records_pb2.SamplingSpec(samples_per_problem=1))
        ledger.apply(problem)
        ledger.apply(_sample(problem, 0, CORRECT))
        ledger.apply(records_pb2.CuratedExample(id=f"e{b}", batch_id=f"b{b}", problem_id=f"p{b}", messages=[
            records_pb2.ChatMessage(role="assistant", content="x" * 25_000)]))
        ledger.apply(records_pb2.CurationDecision(id=f"d{b}", batch_id=f"b{b}", problem_id=f"p{b}", curated=True))
        assert ledger.sizes()["finished_bytes"] <= 60_000
    sizes = ledger.sizes()
    assert sizes["finished_batches"] == 2 and sizes["live_batches"] == 0
    assert ledger.forgotten("b0") and ledger.forgotten("b2") and ledger.status("b4") is not None
