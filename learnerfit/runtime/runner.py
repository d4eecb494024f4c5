"""The processing loop every Kafka stage shares: poll, decode, de-duplicate, process, publish, commit.

A stage is plain logic: a function from a batch of input messages to a flat list
of output messages. It never sees a consumer, an offset or a socket. The
runner guarantees at-least-once delivery with duplicates recognisable by id:
offsets are committed only after every output is acknowledged, so a crash at any
point replays the uncommitted inputs, and the outputs they produce again carry
the same stable ids.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from learnerfit.recent import Recent
from learnerfit.runtime import metrics
from learnerfit.runtime.bus import ID_HEADER, TYPE_HEADER, Bus, header

log = logging.getLogger(__name__)

BatchFn = Callable[[Sequence[Message]], Sequence[Message]]


@dataclass
class Stage:
    """One pipeline stage: what it consumes, its logic, and where each output type goes."""

    name: str
    consumes: Sequence[str]  # one topic, or several read as one stream (e.g. the curator's)
    input_type: type[Message]
    process: BatchFn
    routes: Mapping[type[Message], str]  # where each output type goes
    # Stateful stages (the curator) hold some inputs until they can decide; the
    # runner never commits past a held input, so a restart rebuilds the state.
    held_ids: Callable[[], set[str]] | None = None
    # Time-driven outputs (e.g. a problem whose wait ran out), asked for every poll.
    on_tick: Callable[[], Sequence[Message]] | None = None
    # Content-based routing (e.g. rejected Oracle outputs to their own topic); None falls back to `routes`.
    router: Callable[[Message], str | None] | None = None


class RecordFailed(Exception):
    """Raised inside the runner when one record cannot be processed; it goes to the dead-letter topic."""


@dataclass
class _Decoded:
    record: ConsumerRecord
    message: Message
    record_id: str


class StageRunner:
    """Runs one Stage against the bus until stopped."""

    def __init__(
        self,
        stage: Stage,
        bus: Bus,
        *,
        group_id: str,
        dead_letter_topic: str,
        max_batch: int = 1,
        max_wait_s: float = 0.2,
        dedupe_window: int = 100_000,
    ):
        self.stage = stage
        self.bus = bus
        self.group_id = group_id
        self.dead_letter_topic = dead_letter_topic
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._seen = Recent(dedupe_window)
        # Per partition: offsets of processed inputs the stage still holds, in offset order.
        # (One consumer per stage group is assumed: after a rebalance a new owner replays
        # from the committed offset, which is at or before any held input.)
        self._held: dict[TopicPartition, OrderedDict[int, str]] = {}
        self._position: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._consumer: KafkaConsumer | None = None

    # -- the loop -----------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Polls and processes until `stop` is set; the batch in hand is finished and committed first."""
        self._require_consumer()
        log.info("stage %s consuming %s as group %s", self.stage.name, self.stage.consumes, self.group_id,
                 extra={"stage": self.stage.name})
        try:
            while not stop.is_set():
                self.step()
        finally:
            self.close()

    def step(self) -> int:
        """One poll -> process -> publish -> commit round; returns how many input records it took."""
        records = self.poll()
        outputs, dead = self.process(records)
        self.publish(outputs, dead)
        self.commit(records)
        return len(records)

    def poll(self) -> list[ConsumerRecord]:
        """Gathers up to max_batch records, waiting at most max_wait_s after the first arrives."""
        consumer = self._require_consumer()
        records: list[ConsumerRecord] = []
        deadline: float | None = None
        while len(records) < self.max_batch:
            timeout_ms = 500 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            batch = consumer.poll(timeout_ms=timeout_ms, max_records=self.max_batch - len(records))
            for partition_records in batch.values():
                records.extend(partition_records)
            if not records:
                return records  # idle: let the caller check for stop and tick
            if deadline is None:
                deadline = time.monotonic() + self.max_wait_s
            if time.monotonic() >= deadline:
                break
        return records

    def process(self, records: Sequence[ConsumerRecord]) -> tuple[list[tuple[str, Message]], list[tuple[ConsumerRecord, str]]]:
        """Decodes, drops duplicates, runs the stage; returns (outputs by topic, dead letters with reasons)."""
        dead: list[tuple[ConsumerRecord, str]] = []
        fresh: list[_Decoded] = []
        for record in records:
            metrics.RECORDS_IN.labels(self.stage.name).inc()
            try:
                decoded = self._decode(record)
            except RecordFailed as exc:
                dead.append((record, str(exc)))
                continue
            if self._is_duplicate(decoded.record_id):
                metrics.DUPLICATES.labels(self.stage.name).inc()
                log.info("dropped duplicate %s", decoded.record_id, extra={"stage": self.stage.name})
                continue
            fresh.append(decoded)

        outputs: list[Message] = []
        if fresh:
            started = time.perf_counter()
            produced, failed = self._run_stage(fresh)
            metrics.STAGE_LATENCY.labels(self.stage.name).observe(time.perf_counter() - started)
            outputs.extend(produced)
            dead.extend(failed)
        if self.stage.on_tick is not None:
            outputs.extend(self.stage.on_tick())
        return [(self._route(message), message) for message in outputs], dead

    def publish(self, outputs: Sequence[tuple[str, Message]], dead: Sequence[tuple[ConsumerRecord, str]]) -> None:
        """Sends outputs and dead letters and waits until the broker acknowledged all of them."""
        futures = [self.bus.send(topic, message) for topic, message in outputs]
        for record, reason in dead:
            log.warning("dead-lettering %s/%d/%d: %s", record.topic, record.partition, record.offset, reason,
                        extra={"stage": self.stage.name, "error": reason})
            futures.append(self.bus.send_dead_letter(self.dead_letter_topic, record, self.stage.name, reason))
            metrics.DEAD_LETTERS.labels(self.stage.name).inc()
        self.bus.confirm(futures)
        for topic, _ in outputs:
            metrics.RECORDS_OUT.labels(self.stage.name, topic).inc()

    def commit(self, records: Sequence[ConsumerRecord]) -> None:
        """Commits, per partition, up to the first input the stage still holds (or past the last one)."""
        held_now = self.stage.held_ids() if self.stage.held_ids else set()
        dirty: set[TopicPartition] = set()
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._position[tp] = record.offset + 1
            dirty.add(tp)
            rid = self._decoded_id(record)
            if rid in held_now:
                self._held.setdefault(tp, OrderedDict())[record.offset] = rid
        for tp, held in self._held.items():
            for offset in [o for o, rid in held.items() if rid not in held_now]:
                del held[offset]
                dirty.add(tp)
        offsets = {}
        for tp in dirty:
            held = self._held.get(tp)
            next_offset = next(iter(held)) if held else self._position[tp]
            if self._committed.get(tp) != next_offset:
                offsets[tp] = OffsetAndMetadata(next_offset, "", -1)
        if offsets:
            self._require_consumer().commit(offsets)
            self._committed.update({tp: meta.offset for tp, meta in offsets.items()})

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None

    # -- helpers ------------------------------------------------------------

    def _require_consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = self.bus.consumer(list(self.stage.consumes), self.group_id,
                                               max_poll_records=self.max_batch)
        return self._consumer

    def _decode(self, record: ConsumerRecord) -> _Decoded:
        expected = self.stage.input_type.DESCRIPTOR.full_name
        declared = header(record, TYPE_HEADER)
        if declared is not None and declared != expected:
            raise RecordFailed(f"record type {declared!r} on {record.topic}, stage {self.stage.name} expects {expected!r}")
        message = self.stage.input_type()
        try:
            message.ParseFromString(record.value or b"")
        except DecodeError as exc:
            raise RecordFailed(f"undecodable {expected}: {exc}") from exc
        return _Decoded(record, message, self._decoded_id(record))

    def _decoded_id(self, record: ConsumerRecord) -> str:
        return header(record, ID_HEADER) or _fallback_id(record)

    def _is_duplicate(self, record_id: str) -> bool:
        return not self._seen.add(record_id)

    def _run_stage(self, batch: Sequence[_Decoded]) -> tuple[list[Message], list[tuple[ConsumerRecord, str]]]:
        """Runs the batch at once; if that fails, record by record so only the bad ones are dead-lettered."""
        try:
            return list(self.stage.process([d.message for d in batch])), []
        except Exception:
            if len(batch) == 1:
                return [], [(batch[0].record, _reason())]
            log.warning("batch of %d failed in %s; retrying record by record", len(batch), self.stage.name,
                        extra={"stage": self.stage.name})
        outputs: list[Message] = []
        dead: list[tuple[ConsumerRecord, str]] = []
        for decoded in batch:
            try:
                outputs.extend(self.stage.process([decoded.message]))
            except Exception:
                dead.append((decoded.record, _reason()))
        return outputs, dead

    def _route(self, message: Message) -> str:
        topic = self.stage.router(message) if self.stage.router is not None else None
        if topic:
            return topic
        try:
            return self.stage.routes[type(message)]
        except KeyError:
            raise TypeError(f"stage {self.stage.name} produced {type(message).__name__}, which has no route") from None


def _fallback_id(record: ConsumerRecord) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _reason() -> str:
    """The current exception as one line: its type, message and where it was raised."""
    lines = traceback.format_exc().strip().splitlines()
    where = next((line.strip() for line in reversed(lines) if line.strip().startswith("File ")), "")
    return f"{lines[-1]} ({where})" if where else lines[-1]
