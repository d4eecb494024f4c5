"""Reading whole topics back in tests (from the beginning, outside any consumer group)."""

from __future__ import annotations

import time

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from learnerfit.runtime.bus import Bus
from learnerfit.v1 import runtime_pb2


def read_topic(bus: Bus, topic: str, *, at_least: int = 0, timeout_s: float = 15.0, settle_s: float = 0.5
               ) -> list[ConsumerRecord]:
    """Every record on `topic`: waits until `at_least` arrived, then `settle_s` more for stragglers."""
    reader = bus.reader()
    try:
        topic = bus.topic(topic)
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        settled_at = None
        while time.monotonic() < deadline:
            for batch in reader.poll(timeout_ms=100).values():
                records.extend(batch)
            if len(records) >= at_least:
                settled_at = settled_at or time.monotonic() + settle_s
                if time.monotonic() >= settled_at:
                    break
        return records
    finally:
        reader.close()


def dead_letters(bus: Bus, topic: str = "dead-letter", *, at_least: int = 0, timeout_s: float = 15.0
                 ) -> list[runtime_pb2.DeadLetter]:
    """The dead letters on `topic`, decoded."""
    return [runtime_pb2.DeadLetter.FromString(r.value)
            for r in read_topic(bus, topic, at_least=at_least, timeout_s=timeout_s)]
