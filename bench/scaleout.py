"""Scale-out: one stage with 1, 2 and 4 consumer processes in one group, on a topic of 4 partitions. The stage's work
is a fixed sleep per record, so the two cores here do not hide the effect; what is measured is how well partitions
spread the work (and what joining, polling and committing cost). Target: at least 3.5x at 4 consumers."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid

from kafka import KafkaProducer

from bench.common import Measured, Ratio
from learnerfit.local.broker import TansuBroker
from learnerfit.runtime.bus import Bus
from learnerfit.runtime.runner import StageRunner
from learnerfit.runtime.stage import Stage, StageLogic, StageSpec
from learnerfit.v1 import records_pb2

PARTITIONS = 4
RECORDS = int(os.environ.get("BENCH_SCALEOUT_RECORDS", "160"))
WORK_S = float(os.environ.get("BENCH_SCALEOUT_WORK_S", "0.05"))  # per record
SETTLE_S = float(os.environ.get("BENCH_SCALEOUT_SETTLE_S", "2.0"))  # after every partition is held, before timing


def _sleeping(batch):
    time.sleep(WORK_S * len(batch))
    return list(batch)


def _consume(servers: str, source: str, sink: str, group: str, ready, stop) -> None:
    bus = Bus(servers, client_id=f"scaleout-{os.getpid()}", session_timeout_ms=6000)
    runner = StageRunner(Stage("sleep", StageSpec([source], records_pb2.Problem, {records_pb2.Problem: sink}),
                               StageLogic(_sleeping)), bus,
                         group_id=group, dead_letter_topic=f"{sink}-dead", max_batch=4, max_wait_s=0.01)
    try:
        while not stop.is_set():
            runner.step()
            ready.value = len(runner.assignment())
    finally:
        runner.close()
        bus.close()


def _drain(servers: str, consumers: int) -> Measured:
    tag = uuid.uuid4().hex[:6]
    source, sink, group = f"scale-in-{tag}", f"scale-out-{tag}", f"scale-{tag}"
    bus = Bus(servers, client_id="scaleout-bench", session_timeout_ms=6000)
    bus.ensure_topics([source], PARTITIONS)
    bus.ensure_topics([sink, f"{sink}-dead"], 1)
    context = mp.get_context("spawn")
    stop = context.Event()
    held = [context.Value("i", 0) for _ in range(consumers)]
    workers = [context.Process(target=_consume, args=(servers, source, sink, group, h, stop)) for h in held]
    for worker in workers:
        worker.start()
    try:
        # Timed once the group is settled: every partition held by exactly one consumer, every consumer holding one.
        deadline = time.monotonic() + 120
        while sum(h.value for h in held) != PARTITIONS or min(h.value for h in held) == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"scale-out bench: {consumers} consumers never shared the {PARTITIONS} partitions")
            time.sleep(0.2)
        time.sleep(SETTLE_S)  # past any last rebalance
        producer = KafkaProducer(bootstrap_servers=servers, acks="all")
        started = time.perf_counter()
        for i in range(RECORDS):
            producer.send(source, value=records_pb2.Problem(id=f"p{tag}-{i}").SerializeToString(),
                          partition=i % PARTITIONS)
        producer.flush()
        producer.close()
        reader = bus.reader()
        from kafka import TopicPartition

        partition = TopicPartition(sink, 0)
        reader.assign([partition])
        seen = 0
        while seen < RECORDS:
            if time.perf_counter() - started > 300:
                raise TimeoutError(f"scale-out bench: {seen} of {RECORDS} records came through")
            seen += sum(len(batch) for batch in reader.poll(timeout_ms=100).values())
        seconds = time.perf_counter() - started
        reader.close()
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
        bus.close()
    return Measured(f"{consumers} consumer process(es)", RECORDS, seconds, "rec")


def run() -> list[Ratio]:
    with TansuBroker() as broker:
        measured = {n: _drain(broker.bootstrap_servers, n) for n in (1, 2, 4)}
    print(f"  scale-out: {RECORDS} records x {WORK_S * 1000:.0f} ms of work on {PARTITIONS} partitions: "
          + ", ".join(f"{n} consumer(s) {m.seconds:.1f}s" for n, m in measured.items()), flush=True)
    return [Ratio("scale-out", measured[2], measured[1], ""), Ratio("scale-out", measured[4], measured[1], ">= 3.5")]
