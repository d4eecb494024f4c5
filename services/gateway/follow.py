"""Keeps the ledger up to date by reading the followed topics from the beginning (no consumer group)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from google.protobuf.message import DecodeError, Message
from kafka import TopicPartition

from services.common.bus import Bus
from services.gateway.ledger import BatchLedger

log = logging.getLogger(__name__)


def follow_topics(bus: Bus, types_by_topic: Mapping[str, type[Message]], ledger: BatchLedger,
                  stop: threading.Event) -> None:
    reader = bus.reader()
    try:
        partitions = [
            TopicPartition(topic, p) for topic in types_by_topic for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        while not stop.is_set():
            for tp, records in reader.poll(timeout_ms=200).items():
                for record in records:
                    _apply(ledger, types_by_topic[tp.topic], record.value, tp)
    finally:
        reader.close()


def _apply(ledger: BatchLedger, message_type: type[Message], value: bytes, tp: TopicPartition) -> None:
    message = message_type()
    try:
        message.ParseFromString(value or b"")
    except DecodeError:
        log.warning("ledger skipped an undecodable record on %s", tp.topic)
        return
    ledger.apply(message)
