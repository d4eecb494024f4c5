"""The processing loop every Kafka stage shares: poll, decode, check, de-duplicate, process, publish, commit.

A stage is plain logic: a function from a batch of input messages to a flat list
of output messages. It never sees a consumer, an offset or a socket. The
runner guarantees at-least-once delivery with duplicates recognisable by id:
offsets are committed only after every output is acknowledged, so a crash at any
point replays the uncommitted inputs, and the outputs they produce again carry
the same stable ids.

Failures come in two kinds. A transient one (a back end or the registry down, a
timeout, a refused connection) is retried with exponential backoff and jitter up
to a time budget, since the same record will succeed later; past the budget the
records are dead-lettered as transient, with the last error. A permanent one (an
undecodable record, a record over a limit, a policy that raises) cannot succeed
by waiting: the batch is split and only the bad records are dead-lettered, at once.

Several replicas may share a stage's group: a rebalance listener commits what is
done and hands back what the stage held of the partitions it lost.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from learnerfit.errors import InvalidInput, LimitExceeded, TooLarge, Unavailable
from learnerfit.recent import Recent
from learnerfit.runtime import metrics
from learnerfit.runtime.bus import ID_HEADER, TYPE_HEADER, Bus, Delivery, PublishError, header
from learnerfit.runtime.faults import pause_point
from learnerfit.runtime.stage import Stage
from learnerfit.v1 import runtime_pb2

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How long a transient failure is retried before its records are dead-lettered."""

    budget_s: float = 120.0
    initial_s: float = 0.5
    max_s: float = 30.0


class RecordFailed(Exception):
    """Raised inside the runner when one record cannot be processed; it goes to the dead-letter topic."""


class Stopping(Exception):
    """The service is stopping while a failure is being retried: the batch is neither finished nor committed."""


COMMIT_TIMEOUT_MS = 2_000
_TRANSIENT_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                   grpc.StatusCode.ABORTED}


def is_transient(exc: BaseException) -> bool:
    """True for failures that waiting can cure: a dependency down or slow, anywhere in the exception's chain."""
    while exc is not None:
        if isinstance(exc, InvalidInput):  # TooLarge included: the same record will be too large again
            return False
        if isinstance(exc, PublishError):  # the broker unreachable passes; a record it refused stays refused
            return exc.transient
        if isinstance(exc, (Unavailable, LimitExceeded, TimeoutError, ConnectionError)):  # capacity frees up
            return True
        if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)) and exc.code() in _TRANSIENT_GRPC:
            return True
        if isinstance(exc, KafkaError) and exc.retriable:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass
class _Decoded:
    record: ConsumerRecord
    message: Message
    record_id: str


@dataclass
class _Failure:
    record: ConsumerRecord
    reason: str
    transient: bool
    attempts: int


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
        retry: RetryPolicy = RetryPolicy(),
        ready: Callable[[], bool] | None = None,
    ):
        self.stage = stage
        self.bus = bus
        self.group_id = group_id
        self.dead_letter_topic = dead_letter_topic
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.retry = retry
        # E.g. the stage's state folded from its topics: waited for before the first poll, and again after every
        # partition assignment before anything read is processed (another replica's newest decisions folded first).
        self.ready = ready
        self._catch_up_due = False
        self._stop = threading.Event()
        self._seen = Recent(dedupe_window)
        # Per partition: offsets of processed inputs the stage still holds, in offset order.
        # After a rebalance the new owner replays from the committed offset, which is at or
        # before any held input; the old owner hands its held inputs back (HeldInputs.release).
        self._held: dict[TopicPartition, OrderedDict[int, str]] = {}
        self._position: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._rewind: dict[TopicPartition, int] = {}  # revoked while holding inputs: where to read again if back
        self._consumer: KafkaConsumer | None = None
        self._rebalancing = False  # between a refused commit (or a revocation) and the next assignment
        self._state = threading.Lock()  # guards the offsets above: the rebalance listener runs on another thread

    # -- the loop -----------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Polls and processes until `stop` is set; the batch in hand is finished and committed first
        (unless it is waiting out a transient failure: then it is left uncommitted for the next start)."""
        self._stop = stop
        while self.ready is not None and not self.ready():
            if stop.wait(0.2):
                return
        self._require_consumer()
        log.info("stage %s consuming %s as group %s", self.stage.name, self.stage.spec.consumes, self.group_id,
                 extra={"stage": self.stage.name})
        try:
            while not stop.is_set():
                self.step()
        except Stopping:
            log.info("stage %s stopped while retrying; the batch in hand will be read again", self.stage.name,
                     extra={"stage": self.stage.name})
        finally:
            self.close()

    def step(self) -> int:
        """One poll -> process -> publish -> commit round; returns how many input records it took."""
        records = self.poll()
        self._catch_up()
        outputs, dead = self.process(records)
        if records:
            pause_point(f"{self.stage.name}.processed")  # a fault trial's moment: the inputs done, nothing published
        self.publish(outputs, dead, records)
        if records:
            pause_point(f"{self.stage.name}.published")  # a fault trial's moment: outputs on the topics, not committed
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
        # A rebalance inside poll() may have moved a partition away: its records are the new owner's now.
        owned = consumer.assignment()
        return [r for r in records if TopicPartition(r.topic, r.partition) in owned]

    def _catch_up(self) -> None:
        """After an assignment, waits until `ready` says the stage's folded state is current (a stop meanwhile
        raises Stopping: nothing read is processed or committed)."""
        with self._state:
            due, self._catch_up_due = self._catch_up_due, False
        if not due or self.ready is None:
            return
        while not self.ready():
            if self._stop.is_set():
                raise Stopping()
        log.info("stage %s caught up after the assignment", self.stage.name, extra={"stage": self.stage.name})

    def process(self, records: Sequence[ConsumerRecord]) -> tuple[list[tuple[str, Message]], list[_Failure]]:
        """Decodes, checks, drops duplicates, runs the stage; returns (outputs by topic, dead letters)."""
        dead: list[_Failure] = []
        fresh: list[_Decoded] = []
        for record in records:
            metrics.RECORDS_IN.labels(self.stage.name).inc()
            try:
                decoded = self._decode(record)
            except RecordFailed as exc:
                dead.append(_Failure(record, str(exc), transient=False, attempts=0))
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
            for failure in failed:  # a dead letter replayed later is new work, not a duplicate
                self._seen.discard(self._decoded_id(failure.record))
        if self.stage.logic.tick is not None:
            outputs.extend(self.stage.logic.tick())
        for message in outputs:  # a stage that gives up on held inputs itself: their replay is new work too
            if isinstance(message, runtime_pb2.DeadLetter) and message.record_id:
                self._seen.discard(message.record_id)
        return [(self._route(message), message) for message in outputs], dead

    def publish(self, outputs: Sequence[tuple[str, Message]], dead: Sequence[_Failure],
                inputs: Sequence[ConsumerRecord] = ()) -> None:
        """Sends outputs and dead letters and waits until the broker acknowledged all of them (the `publish_last`
        types go once the others are). A broker that is down or slow is waited out within the retry budget; past
        it (or at once, for a record the broker refuses) the `inputs` are dead-lettered as transient, and those
        letters are retried until they go or the service stops: an outage never ends the process, and nothing is
        committed that was not published. Outputs still on their way may arrive too: a replayed letter makes
        them again with the same ids."""
        try:
            self._deliver(outputs, dead, "publishing outputs", self.retry.budget_s)
        except PublishError as exc:
            reason = f"outputs not published: {exc}"
            already = {id(f.record) for f in dead}
            letters = [*dead, *(_Failure(r, reason, exc.transient, 1) for r in inputs if id(r) not in already)]
            log.error("%s; dead-lettering the %d inputs instead", reason, len(letters),
                      extra={"stage": self.stage.name, "error": reason})
            self._deliver([], letters, "dead-lettering inputs", None)

    def _deliver(self, outputs: Sequence[tuple[str, Message]], dead: Sequence[_Failure], what: str,
                 budget_s: float | None) -> None:
        for failure in dead:
            record = failure.record
            log.warning("dead-lettering %s/%d/%d (%s): %s", record.topic, record.partition, record.offset,
                        "transient, retries ran out" if failure.transient else "permanent", failure.reason,
                        extra={"stage": self.stage.name, "error": failure.reason})
        first = Delivery(self.bus, [*((t, m) for t, m in outputs if type(m) not in self.stage.spec.publish_last),
                                    *((self.dead_letter_topic, self._dead_letter(f)) for f in dead)])
        last = Delivery(self.bus, [(t, m) for t, m in outputs if type(m) in self.stage.spec.publish_last])

        def attempt() -> None:
            first.confirm(self.bus.publish_timeout_s)
            last.confirm(self.bus.publish_timeout_s)

        self._retrying(budget_s, attempt, what)
        metrics.DEAD_LETTERS.labels(self.stage.name).inc(len(dead))
        for topic, _ in outputs:
            metrics.RECORDS_OUT.labels(self.stage.name, topic).inc()

    def commit(self, records: Sequence[ConsumerRecord]) -> None:
        """Commits, per partition, up to the first input the stage still holds (or past the last one)."""
        held_now = self.stage.logic.held.held_ids() if self.stage.logic.held is not None else set()
        owned = self._require_consumer().assignment()
        with self._state:  # the rebalance listener runs on the client's network thread
            for record in records:
                tp = TopicPartition(record.topic, record.partition)
                if tp not in owned:
                    continue  # moved to another replica meanwhile: the new owner reads it again
                self._position[tp] = record.offset + 1
                rid = self._decoded_id(record)
                if rid in held_now:
                    self._held.setdefault(tp, OrderedDict())[record.offset] = rid
            for held in self._held.values():
                for offset in [o for o, rid in held.items() if rid not in held_now]:
                    del held[offset]
            offsets = {}
            for tp, position in self._position.items():  # every partition: one skipped earlier is committed now
                held = self._held.get(tp)
                next_offset = next(iter(held)) if held else position
                if self._committed.get(tp) != next_offset:
                    offsets[tp] = OffsetAndMetadata(next_offset, "", -1)
            if not offsets or self._rebalancing:  # a commit now would be refused, and hold up the rejoin
                return
        try:
            # Bounded: a commit retried through a rebalance would otherwise keep this consumer from rejoining.
            self._require_consumer().commit(offsets, timeout_ms=COMMIT_TIMEOUT_MS)
        except KafkaError as exc:
            # The group is rebalancing or rebalanced under us: tried again once it settled, or the new owner
            # reads these inputs again and the outputs are recognised downstream by id.
            with self._state:
                self._rebalancing = isinstance(exc, (CommitFailedError, RebalanceInProgressError))
            log.warning("commit not made (%s: %s); tried again later", type(exc).__name__, exc,
                        extra={"stage": self.stage.name})
            return
        with self._state:
            self._committed.update({tp: meta.offset for tp, meta in offsets.items() if tp in self._position})

    def assignment(self) -> set[TopicPartition]:
        """The partitions this runner's consumer holds now (none before its first poll)."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    def close(self) -> None:
        """Commits what is done and not yet committed (one bounded try: a commit refused after a broker restart or
        a rebalance leaves those inputs to be read again, and recognised by id), then leaves the group."""
        if self._consumer is not None:
            try:
                self.commit([])
            except Exception as exc:  # closing must not fail: at worst the new owner reads them again
                log.warning("last commit not made (%s)", exc, extra={"stage": self.stage.name})
            self._consumer.close(autocommit=False)
            self._consumer = None

    # -- rebalances -----------------------------------------------------------

    def _revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Before a partition moves: forget (and release) what the stage held there. What was processed since the
        last commit is read again by the new owner and recognised downstream by id. (No commit here: this runs on
        the client's network thread, and the group is already rebalancing.)"""
        released: set[str] = set()
        with self._state:
            self._rebalancing = True
            for tp in partitions:
                held = self._held.pop(tp, None)
                if held:
                    self._rewind[tp] = next(iter(held))  # the first held input's offset
                    released.update(held.values())
                self._position.pop(tp, None)
                self._committed.pop(tp, None)
            # Should the partition come back to this replica, the released inputs are read again and must be taken,
            # not dropped as duplicates of what it has let go.
            for rid in released:
                self._seen.discard(rid)
        if released and self.stage.logic.held is not None:
            self.stage.logic.held.release(released)
        log.info("partitions revoked: %s (released %d held inputs)", sorted(f"{tp.topic}/{tp.partition}"
                 for tp in partitions), len(released), extra={"stage": self.stage.name})

    def _assigned(self, partitions: Sequence[TopicPartition]) -> None:
        with self._state:
            self._rebalancing = False
            self._catch_up_due = True
            # Only the very next assignment counts: a partition given back at once was nobody else's meanwhile.
            given = set(partitions)
            rewind = {tp: offset for tp, offset in self._rewind.items() if tp in given}
            self._rewind = {}
        # A partition this replica gets back keeps its fetch position in kafka-python, past the inputs it released:
        # read again from the first of them (earlier ones were done and published).
        for tp, offset in rewind.items():
            self._consumer.seek(tp, offset)
        log.info("partitions assigned: %s", sorted(f"{tp.topic}/{tp.partition}" for tp in partitions),
                 extra={"stage": self.stage.name})

    # -- helpers ------------------------------------------------------------

    def _require_consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = self.bus.consumer(list(self.stage.spec.consumes), self.group_id,
                                               max_poll_records=self.max_batch, listener=_Listener(self))
        return self._consumer

    def _decode(self, record: ConsumerRecord) -> _Decoded:
        expected = self.stage.spec.input_type.DESCRIPTOR.full_name
        declared = header(record, TYPE_HEADER)
        if declared is not None and declared != expected:
            raise RecordFailed(f"record type {declared!r} on {record.topic}, stage {self.stage.name} expects "
                               f"{expected!r}")
        message = self.stage.spec.input_type()
        try:
            message.ParseFromString(record.value or b"")
        except DecodeError as exc:
            raise RecordFailed(f"undecodable {expected}: {exc}") from exc
        if self.stage.logic.check is not None:
            try:
                self.stage.logic.check(message)
            except InvalidInput as exc:
                raise RecordFailed(f"rejected {expected}: {exc}") from exc
        return _Decoded(record, message, self._decoded_id(record))

    def _decoded_id(self, record: ConsumerRecord) -> str:
        return header(record, ID_HEADER) or _fallback_id(record)

    def _is_duplicate(self, record_id: str) -> bool:
        return not self._seen.add(record_id)

    def _run_stage(self, batch: Sequence[_Decoded]) -> tuple[list[Message], list[_Failure]]:
        """Runs the batch (transient failures retried); a permanent failure splits it record by record so only
        the bad ones are dead-lettered; a transient one past the retry budget dead-letters the whole batch."""
        attempts = [0]
        try:
            return self._attempt(batch, attempts), []
        except Stopping:
            raise
        except Exception as exc:
            reason = _reason(exc)
            if is_transient(exc) or len(batch) == 1:
                return [], [_Failure(d.record, reason, is_transient(exc), attempts[0]) for d in batch]
            log.warning("batch of %d failed in %s (%s); retrying record by record", len(batch), self.stage.name,
                        reason, extra={"stage": self.stage.name})
        outputs: list[Message] = []
        dead: list[_Failure] = []
        for decoded in batch:
            attempts = [0]
            try:
                outputs.extend(self._attempt([decoded], attempts))
            except Stopping:
                raise
            except Exception as exc:
                dead.append(_Failure(decoded.record, _reason(exc), is_transient(exc), attempts[0]))
        return outputs, dead

    def _attempt(self, batch: Sequence[_Decoded], attempts: list[int]) -> list[Message]:
        """The stage on `batch`, with transient failures retried until the retry budget is spent. An output the
        broker would refuse for its size fails the attempt as permanent, so only its input is dead-lettered."""
        def once() -> list[Message]:
            attempts[0] += 1
            outputs = list(self.stage.logic.process([d.message for d in batch]))
            for message in outputs:
                self.bus.check_size(message)
            return outputs
        return self._retrying(self.retry.budget_s, once, f"stage {self.stage.name}")

    def _retrying(self, budget_s: float | None, action: Callable[[], _T], what: str) -> _T:
        """`action`, its transient failures retried (exponential backoff with jitter) until budget_s is spent, or
        for as long as the service runs (None); a stop while waiting raises Stopping."""
        stopping = (lambda _: self._stop.is_set())
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(multiplier=self.retry.initial_s, max=self.retry.max_s,
                                         jitter=self.retry.initial_s),
            stop=stopping if budget_s is None else stop_after_delay(budget_s) | stopping,
            sleep=self._stop.wait,
            before_sleep=lambda state: self._note_retry(what, state.outcome.exception(), state.next_action.sleep),
            reraise=True,
        )
        try:
            return retrying(action)
        except Exception:
            if self._stop.is_set():
                raise Stopping() from None
            raise

    def _note_retry(self, what: str, exc: BaseException | None, delay_s: float) -> None:
        metrics.RETRIES.labels(self.stage.name).inc()
        log.warning("transient failure %s, retrying in %.1fs: %s", what, delay_s, _reason(exc),
                    extra={"stage": self.stage.name})

    def _dead_letter(self, failure: _Failure) -> runtime_pb2.DeadLetter:
        record = failure.record
        prefix = self.bus.topic_prefix
        topic = record.topic[len(prefix):] if prefix and record.topic.startswith(prefix) else record.topic
        letter = runtime_pb2.DeadLetter(
            id=f"{topic}/{record.partition}/{record.offset}", stage=self.stage.name, reason=failure.reason[:4096],
            transient=failure.transient, source_topic=topic, source_partition=record.partition,
            source_offset=record.offset, record_id=header(record, ID_HEADER) or "",
            record_type=header(record, TYPE_HEADER) or "",
            problem_id=(record.key or b"").decode("utf-8", "replace"), value=record.value or b"",
            attempts=failure.attempts)
        try:
            self.bus.check_size(letter)
        except TooLarge:  # the letter still says what failed and where; the record stays on its topic at that offset
            letter.value = b""
            letter.reason += " (record value left out of this letter: too large)"
        return letter

    def _route(self, message: Message) -> str:
        spec, route = self.stage.spec, self.stage.logic.route
        topic = route(message) if route is not None else None
        if topic:
            if topic not in spec.writes:
                raise TypeError(f"stage {self.stage.name} routed a {type(message).__name__} to {topic!r}, a topic its "
                                "spec does not declare (StageSpec.produces or also_produces): its ACLs would refuse it")
            return topic
        try:
            return spec.produces[type(message)]
        except KeyError:
            raise TypeError(f"stage {self.stage.name} produced {type(message).__name__}, which has no route") from None


def _fallback_id(record: ConsumerRecord) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _reason(exc: BaseException | None) -> str:
    """An exception as one line: its type, message and where it was raised."""
    if exc is None:
        return "unknown error"
    lines = "".join(traceback.format_exception(exc)).strip().splitlines()
    where = next((line.strip() for line in reversed(lines) if line.strip().startswith("File ")), "")
    return f"{lines[-1]} ({where})" if where else lines[-1]


class _Listener(ConsumerRebalanceListener):
    def __init__(self, runner: StageRunner):
        self.runner = runner

    def on_partitions_revoked(self, revoked):
        self.runner._revoked(list(revoked))

    def on_partitions_assigned(self, assigned):
        self.runner._assigned(list(assigned))
