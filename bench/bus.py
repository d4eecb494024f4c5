"""Bus hop: trajectories of realistic size (2-4 KB of text, with scores) through one stage that does nothing, against
raw kafka-python moving the same bytes (consume, produce, commit), on one Tansu broker. Records per second.

Both sides read the same pre-filled topic from the start, produce with the same settings (acks=all, idempotent,
gzip, linger 5 ms) and commit after each batch; the stage runner also decodes and re-encodes each record, checks it,
drops redelivered duplicates and tracks held offsets. Targets: the runner at least 0.8x raw and 10,000 records/s.
"""

from __future__ import annotations

import os
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer

from bench.common import Measured, Ratio
from learnerfit.local.broker import TansuBroker
from learnerfit.runtime.bus import Bus
from learnerfit.runtime.runner import StageRunner
from learnerfit.runtime.stage import Stage, StageLogic, StageSpec
from learnerfit.v1 import records_pb2

RECORDS = int(os.environ.get("BENCH_BUS_RECORDS", "5000"))
BATCH = max(1, min(500, RECORDS // 10))  # the first batch (the group join) is not timed: leave most after it


def trajectory(i: int) -> records_pb2.Trajectory:
    steps = [f"Step {k}: {i} * {k} = {i * k}, then {i * k} + {k} = {i * k + k}." for k in range(1, 40)]
    text = "\n".join(steps) + f"\nFinal answer: {i}"
    problem = records_pb2.Problem(id=f"p{i}", batch_id="bench", question=f"Compute the sum for {i} steps.",
                                  reference_answer=str(i))
    scores = records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT, reward=1.5, ppl=1.3, token_count=400,
                                segment_ppl=[1.2, 1.3, 1.4, 1.1],
                                top_loss_tokens=[records_pb2.TokenLoss(token=f"t{k}", total_loss=k, count=1)
                                                 for k in range(8)])
    return records_pb2.Trajectory(id=f"t{i}", problem=problem, text=text, model="bench", scores=scores,
                                  sample_index=i % 8)


def run() -> list[Ratio]:
    payloads = [trajectory(i).SerializeToString() for i in range(RECORDS)]
    with TansuBroker() as broker:
        servers = broker.bootstrap_servers
        bus = Bus(servers, client_id="bench-bus", session_timeout_ms=6000)
        source = f"hop-in-{uuid.uuid4().hex[:6]}"
        bus.ensure_topics([source, "hop-raw", "hop-stage", "hop-dead"], partitions=1)
        for payload in payloads:
            bus.send_raw(source, None, payload, [])
        bus.producer.flush()
        try:
            raw = _raw_hop(servers, source, "hop-raw")
            stage = _stage_hop(bus, source, "hop-stage")
        finally:
            bus.close()
    size = sum(map(len, payloads)) // len(payloads)
    print(f"  bus: {RECORDS} records of {size} bytes on average; raw {raw.tokens_per_s:.0f} rec/s, "
          f"stage {stage.tokens_per_s:.0f} rec/s (target >= 10000 rec/s)", flush=True)
    return [Ratio("bus hop", stage, raw, ">= 0.8")]


def _raw_hop(servers: str, source: str, sink: str) -> Measured:
    consumer = KafkaConsumer(source, bootstrap_servers=servers, group_id=f"raw-{uuid.uuid4().hex[:6]}",
                             enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=BATCH,
                             # The stage's group timing (Bus): with kafka-python's defaults Tansu takes 20 s and more
                             # to complete the join.
                             session_timeout_ms=6000, heartbeat_interval_ms=1200)
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True, linger_ms=5,
                             compression_type="gzip")
    moved, started, first = 0, 0.0, 0
    try:
        while moved < RECORDS:
            for records in consumer.poll(timeout_ms=1000, max_records=BATCH).values():
                for record in records:
                    producer.send(sink, key=record.key, value=record.value)
                moved += len(records)
            producer.flush()
            consumer.commit()
            if moved and not first:  # timed from the second batch: the group join is not the hop
                started, first = time.perf_counter(), moved
        return Measured("raw kafka-python hop", moved - first, time.perf_counter() - started, "rec")
    finally:
        consumer.close()
        producer.close()


def _stage_hop(bus: Bus, source: str, sink: str) -> Measured:
    stage = Stage("hop", StageSpec([source], records_pb2.Trajectory, {records_pb2.Trajectory: sink}),
                  StageLogic(lambda batch: list(batch)))
    runner = StageRunner(stage, bus, group_id=f"stage-{uuid.uuid4().hex[:6]}", dead_letter_topic="hop-dead",
                         max_batch=BATCH, max_wait_s=0.05)
    moved = 0
    while not moved:
        moved = runner.step()  # joins the group and moves the first batch; timed from the second, like raw
    started = time.perf_counter()
    first = moved
    while moved < RECORDS:
        moved += runner.step()
    return Measured("stage runner hop (no-op stage)", moved - first, time.perf_counter() - started, "rec")
