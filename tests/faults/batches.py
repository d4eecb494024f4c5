"""What the fault tests share: a batch of problems through the local stack (the tiny learner, 4 partitions per
topic so stages can run as replicas), and the tally of what came out, by id."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from learnerfit.domain import topics
from learnerfit.local.processes import channel
from learnerfit.runtime.bus import Bus
from learnerfit.runtime.faults import PAUSE_AT, PAUSE_DIR
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from tests.kafka_helpers import read_topic

# The stages a batch passes through with the refine mode on (the trainer and registry are tried apart).
STAGES = ("gateway", "generator", "reward_scorer", "drift_scorer", "refiner", "curator")
PROBLEMS, SAMPLES = 6, 3
EXPECTED = PROBLEMS * SAMPLES


def oracle_pending(s: records_pb2.BatchStatus) -> bool:
    return s.oracle_expected == 0 or s.oracle_scored + s.oracle_rejected < s.oracle_expected


# When each stage holds work, read off the batch's progress: the kill lands inside this window.
HOLDING = {
    "gateway": lambda s: s.samples_generated < EXPECTED,
    "generator": lambda s: s.samples_generated < EXPECTED,
    "reward_scorer": lambda s: 0 < s.samples_generated and s.samples_scored < EXPECTED,
    "drift_scorer": lambda s: 0 < s.samples_generated and s.samples_scored < EXPECTED,
    "refiner": lambda s: 0 < s.samples_scored and oracle_pending(s),
    "curator": lambda s: 0 < s.samples_scored and s.problems_decided < PROBLEMS,
}


def problems(tag: str) -> list[records_pb2.Problem]:
    """0 + 1 ... 5 + 1: the tiny learner gets 1 + 1 right; the others are decided uncurated."""
    return [records_pb2.Problem(question=f"Calculate {i} + 1.", reference_answer=str(i + 1), source=f"{tag}#{i}")
            for i in range(PROBLEMS)]


def submit(stack, tag: str, policy: str = "") -> str:
    gateway = services_pb2_grpc.GatewayStub(channel(stack.state.gateway))
    request = services_pb2.SubmitBatchRequest(
        problems=problems(tag), sampling=records_pb2.SamplingSpec(samples_per_problem=SAMPLES, max_new_tokens=16,
                                                                   seed=3),
        oracle_modes=[records_pb2.ORACLE_MODE_REFINE], curation_policy=policy)
    deadline = time.monotonic() + 60
    while True:  # the gateway itself may be the one down: a client retries UNAVAILABLE
        try:
            return gateway.SubmitBatch(request, timeout=10).batch_id
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            gateway = services_pb2_grpc.GatewayStub(channel(stack.state.gateway))


def wait_complete(stack, batch_id: str, timeout_s: float = 240) -> records_pb2.BatchStatus:
    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            gateway = services_pb2_grpc.GatewayStub(channel(stack.state.gateway))
            status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
            if status.state == records_pb2.BATCH_STATE_COMPLETE:
                return status
        except Exception:
            pass  # a restarted gateway folding the topics back
        time.sleep(0.5)
    raise AssertionError(f"batch {batch_id} not complete in {timeout_s}s: {status}")


def records(stack, batch_id: str) -> tuple[dict[str, list], dict[str, list]]:
    """The batch's decision and example records as they are on the topics (copies included), by problem id."""
    bus = Bus(stack.state.bootstrap_servers, client_id="fault-trials")
    try:
        decisions = [records_pb2.CurationDecision.FromString(r.value) for r in read_topic(bus, topics.DECISIONS)]
        examples = [records_pb2.CuratedExample.FromString(r.value) for r in read_topic(bus, topics.CURATED)]
    finally:
        bus.close()
    by_problem: tuple[dict[str, list], dict[str, list]] = (defaultdict(list), defaultdict(list))
    for record in decisions:
        if record.batch_id == batch_id:
            by_problem[0][record.problem_id].append(record)
    for record in examples:
        if record.batch_id == batch_id:
            by_problem[1][record.problem_id].append(record)
    return by_problem


def tally(stack, batch_id: str) -> dict:
    decisions, examples = records(stack, batch_id)
    counts = Counter(lost=PROBLEMS - len(decisions) + len(examples.keys() - decisions.keys()))
    for problem_id, copies in decisions.items():
        made = examples.get(problem_id, [])
        counts["duplicated"] += len({d.id for d in copies}) - 1 + max(0, len({e.id for e in made}) - 1)
        # A decision is published last and folded by every curator before it decides: a second record of one is a
        # second decision. An example may be published again by a curator killed between its example and its
        # decision (at-least-once; the same id, recognised downstream).
        counts["decision_copies"] += len(copies) - 1
        counts["copies"] += len(made) - len({e.id for e in made})
        # One id, one content: the same decision however often it was published.
        counts["contradicting"] += len({(d.id, d.curated, d.chosen_trajectory_id) for d in copies}) - len(
            {d.id for d in copies})
        counts["contradicting"] += len({(e.id, e.trajectory_id, e.messages[-1].content) for e in made}) - len(
            {e.id for e in made})
        decision = copies[0]
        if decision.curated and not made:
            counts["lost"] += 1
        elif made and (not decision.curated or made[0].trajectory_id != decision.chosen_trajectory_id):
            counts["contradicting"] += 1
    curated = sorted((e[0].messages[-2].content, e[0].messages[-1].content) for e in examples.values())
    return {"lost": counts["lost"], "duplicated": counts["duplicated"], "contradicting": counts["contradicting"],
            "decision_copies": counts["decision_copies"], "copies": counts["copies"], "decided": len(decisions),
            "curated": curated}


# Where each stage's trial stops it: its inputs processed and nothing of them published (a stage), or the batch
# published and the client not yet answered (the gateway). learnerfit/runtime/faults.py.
PAUSE_POINTS = {stage: f"{stage}.processed" for stage in STAGES} | {"gateway": "gateway.published"}


def kill_at_pause(stack, stage: str, submit_batch, pauses: Path, monkeypatch, timeout_s: float = 120) -> str:
    """Restarts `stage` with its pause point armed, submits a batch (on a thread: the gateway may be the one that
    stops), waits until the stage holds the batch's work there, SIGKILLs it and restarts it unarmed. The moment is
    reached every time, however busy the machine. Returns the batch id, once the submission was answered."""
    point = PAUSE_POINTS[stage]
    monkeypatch.setenv(PAUSE_AT, point)
    monkeypatch.setenv(PAUSE_DIR, str(pauses))
    try:
        stack.kill(stage)  # idle now: started again, armed
        stack.restart(stage)
    finally:
        monkeypatch.delenv(PAUSE_AT)  # nothing started from now on is
    answered: dict[str, str] = {}
    submitting = threading.Thread(target=lambda: answered.update(batch=submit_batch()), daemon=True)
    submitting.start()
    deadline = time.monotonic() + timeout_s
    while not (pauses / point).exists():
        assert time.monotonic() < deadline, f"{stage} never reached {point}"
        stack.check_alive()
        time.sleep(0.05)
    stack.kill(stage)
    (pauses / point).unlink()
    stack.restart(stage)
    submitting.join(timeout_s)
    assert "batch" in answered, "the submission was never answered"
    return answered["batch"]


def kill_while_holding(stack, process: str, stage: str, submit_batch, jitter_s: float, tries: int = 3
                       ) -> tuple[str, records_pb2.BatchStatus, float]:
    """SIGKILLs `process` (a stage or one of its replicas) `jitter_s` into the window in which `stage` holds work
    of a batch; returns the batch, its progress at the kill and the seconds since it was submitted. Some windows
    are a few hundred milliseconds (the refiner's, with the tiny model): a batch that finishes before the window is
    caught is let be, and another one submitted (`submit_batch(attempt)` -> batch id), up to `tries`."""
    for attempt in range(tries):
        batch_id = submit_batch(attempt)
        started = time.monotonic()
        gateway = services_pb2_grpc.GatewayStub(channel(stack.state.gateway))
        status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
        while not HOLDING[stage](status) and status.state == records_pb2.BATCH_STATE_RUNNING:
            assert time.monotonic() - started < 60, f"{stage} never held work: {status}"
            time.sleep(0.01)
            status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
        if not HOLDING[stage](status):
            wait_complete(stack, batch_id)  # missed: let it finish, try another
            continue
        time.sleep(jitter_s)
        at_kill = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id), timeout=10)
        if not HOLDING[stage](at_kill):
            wait_complete(stack, batch_id)
            continue
        stack.kill(process)
        return batch_id, at_kill, time.monotonic() - started
    raise AssertionError(f"no kill landed while {stage} held work, in {tries} batches")
