"""The Kafka bus on kafka-python: topics, an idempotent producer, consumers with manual commits.

Every record is a protobuf message from protos/, keyed by the problem it belongs
to (so a problem's records stay in order on one partition), with its stable id
and type in headers so a consumer can spot duplicates and mis-routed records.
Which fields are the key and the id, each record's message declares (the `bus` option,
protos/learnerfit/v1/bus.proto), so the bus knows no record type.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from kafka.producer.future import FutureRecordMetadata

from learnerfit.errors import TooLarge
from learnerfit.v1 import bus_pb2

log = logging.getLogger(__name__)

ID_HEADER = "lf-id"
TYPE_HEADER = "lf-type"


# What a record carries besides its key and value, at most (batch framing, headers' names, varints), so a record
# under max_record_bytes by this margin is under the producer's own limit too.
RECORD_OVERHEAD_BYTES = 512


class PublishError(RuntimeError):
    """The broker did not acknowledge an output record; the inputs must not be committed. `transient`: waiting can
    cure it (the broker unreachable, slow or electing a leader); False when the broker refused the record itself."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


def _publish_error(exc: Exception) -> PublishError:
    # A timeout or a lost connection passes; a refused record (too large, not authorised) would be refused again.
    transient = not isinstance(exc, MessageSizeTooLargeError) and (not isinstance(exc, KafkaError) or exc.retriable)
    return PublishError(f"output record not acknowledged: {type(exc).__name__}: {exc}", transient)


def record_key(message: Message) -> str:
    """The partition key the record's message declares (its problem, so a problem's records stay in order on one
    partition), else its id."""
    return _field(message, _declared_keys(message.DESCRIPTOR).partition) or record_id(message)


def record_id(message: Message) -> str:
    """The record's stable id (content-derived) its message declares, used to drop duplicates."""
    return _field(message, _declared_keys(message.DESCRIPTOR).id)


@functools.cache
def _declared_keys(descriptor: Descriptor) -> bus_pb2.BusKeys:
    options = descriptor.GetOptions()
    if not options.HasExtension(bus_pb2.bus) or not options.Extensions[bus_pb2.bus].id:
        raise TypeError(f"{descriptor.full_name} cannot go on the bus: its message declares no record id "
                        "(option (bus) = {id: ..., partition: ...}, protos/learnerfit/v1/bus.proto)")
    return options.Extensions[bus_pb2.bus]


def _field(message: Message, path: str) -> str:
    value: Any = message
    for name in path.split(".") if path else ():
        value = getattr(value, name)
    return value if isinstance(value, str) else ""


def header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode("utf-8", "replace")
    return None


class Delivery:
    """Records on their way, confirmed as one: a confirm tried again sends only what failed and waits again on what
    is still on its way (the producer keeps retrying those by itself), so a slow broker gets no second copies."""

    def __init__(self, bus: Bus, records: Iterable[tuple[str, Message]]):
        self.bus = bus
        self.records = list(records)
        self._futures: list[FutureRecordMetadata | None] = [None] * len(self.records)

    def confirm(self, timeout_s: float) -> None:
        """Sends what is not on its way, then waits up to timeout_s for all of it (PublishError past that)."""
        for i, (topic, message) in enumerate(self.records):
            future = self._futures[i]
            if future is None or (future.is_done and future.failed()):
                self._futures[i] = self.bus.send(topic, message)
        self.bus.confirm([f for f in self._futures if f is not None], timeout_s)


class Bus:
    """Kafka clients for one process. The producer is shared and idempotent (acks=all)."""

    def __init__(self, bootstrap_servers: str, client_id: str, session_timeout_ms: int = 10_000,
                 topic_prefix: str = "", max_record_bytes: int = 1_000_000, compression: str | None = "gzip",
                 security: Mapping[str, Any] | None = None, publish_timeout_s: float = 4.0):
        self.bootstrap_servers = bootstrap_servers
        self.security = dict(security or {})  # TLS / SASL options, passed to every client (BusSettings)
        self.client_id = client_id
        self.session_timeout_ms = session_timeout_ms
        self.topic_prefix = topic_prefix
        # A real Kafka broker refuses records over message.max.bytes (about 1 MB by default); refusing them
        # here says which record and why, instead of a broker error after the fact.
        self.max_record_bytes = max_record_bytes
        self.compression = compression
        # How long a send may block on the broker's metadata, and a caller who is waiting (a gRPC call) on its
        # acknowledgement: an unreachable broker is reported within this, not after kafka-python's 60 s.
        self.publish_timeout_s = publish_timeout_s
        self._producer: KafkaProducer | None = None

    def topic(self, name: str) -> str:
        """The full name of a pipeline topic on this bus."""
        return self.topic_prefix + name

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                compression_type=self.compression,
                max_request_size=self.max_record_bytes,
                max_block_ms=int(self.publish_timeout_s * 1000),
                **self.security,
            )
        return self._producer

    def ensure_topics(self, names: Iterable[str], partitions: int, replication: int = 1) -> None:
        """Creates the topics that do not exist yet; existing ones are left as they are."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id=f"{self.client_id}-admin",
                                 **self.security)
        try:
            existing = set(admin.list_topics())
            wanted = dict.fromkeys(self.topic(n) for n in names)
            missing = [NewTopic(n, partitions, replication) for n in wanted if n not in existing]
            if missing:
                try:
                    admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass  # another service created it between list and create
                log.info("created topics %s", [t.name for t in missing])
        finally:
            admin.close()

    def check_size(self, message: Message) -> None:
        """Raises TooLarge when `message` would make a record over max_record_bytes: a record the broker would
        refuse every time, so a stage dead-letters what produced it instead of retrying."""
        size = message.ByteSize() + len(record_key(message)) + len(record_id(message)) + RECORD_OVERHEAD_BYTES
        if size > self.max_record_bytes:
            raise TooLarge(type(message).__name__, f"a record of about {size} bytes, at most {self.max_record_bytes} "
                                                   "allowed (setting bus.max_record_bytes)")

    def send(self, topic: str, message: Message) -> FutureRecordMetadata:
        """Queues one record; raises TooLarge for a record over max_record_bytes, PublishError when the broker
        cannot be reached within publish_timeout_s."""
        self.check_size(message)
        headers = [
            (ID_HEADER, record_id(message).encode()),
            (TYPE_HEADER, message.DESCRIPTOR.full_name.encode()),
        ]
        return self.send_raw(topic, record_key(message).encode(), message.SerializeToString(), headers)

    def send_raw(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
                 ) -> FutureRecordMetadata:
        """Sends bytes as they are (a dead letter replayed onto its topic)."""
        try:
            return self.producer.send(self.topic(topic), key=key, value=value, headers=list(headers))
        except KafkaError as exc:  # no metadata within max_block_ms, or a record the producer refuses
            raise _publish_error(exc) from exc

    def confirm(self, futures: Sequence[FutureRecordMetadata], timeout_s: float = 30.0) -> None:
        """Blocks until every sent record is acknowledged by the broker, or raises PublishError after timeout_s.
        Records not acknowledged may still arrive later: their ids make them recognisable when a retry sends them
        again."""
        if not futures:
            return
        try:
            self.producer.flush(timeout=timeout_s)
            for future in futures:
                future.get(timeout=timeout_s)
        except Exception as exc:  # kafka-python raises KafkaError subclasses and timeouts
            raise _publish_error(exc) from exc

    def publish(self, outputs: Iterable[tuple[str, Message]], timeout_s: float = 30.0) -> int:
        """Sends (topic, message) pairs and waits for their acknowledgement (PublishError after timeout_s)."""
        futures = [self.send(topic, message) for topic, message in outputs]
        self.confirm(futures, timeout_s)
        return len(futures)

    def consumer(self, topics: Sequence[str], group_id: str, max_poll_records: int = 500,
                 listener: ConsumerRebalanceListener | None = None) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 5, 500),
            # Model stages can spend minutes on one batch between polls.
            max_poll_interval_ms=30 * 60 * 1000,
            max_poll_records=max_poll_records,
            max_partition_fetch_bytes=max(self.max_record_bytes, 1_048_576),
            **self.security,
        )
        consumer.subscribe([self.topic(t) for t in topics], listener=listener)
        return consumer

    def reader(self) -> KafkaConsumer:
        """A consumer outside any group, for folding whole topics (it never commits)."""
        return KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-reader",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self.security,
        )

    def read_all(self, topic: str) -> list[bytes]:
        """Every record value on `topic`, from the beginning up to its end when called (outside any group)."""
        reader = self.reader()
        try:
            name = self.topic(topic)
            partitions = [TopicPartition(name, p) for p in sorted(reader.partitions_for_topic(name) or ())]
            if not partitions:
                return []
            reader.assign(partitions)
            reader.seek_to_beginning(*partitions)
            ends = reader.end_offsets(partitions)
            values: list[bytes] = []
            while any(reader.position(tp) < ends[tp] for tp in partitions):
                for records in reader.poll(timeout_ms=500).values():
                    values.extend(r.value for r in records)
            return values
        finally:
            reader.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=10)
            self._producer.close(timeout=10)
            self._producer = None
