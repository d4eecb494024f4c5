"""Folds whole topics into a service's state, from the beginning, outside any consumer group.

Used for state that is a function of the log: the gateway's batch progress, the
learner services' view of which checkpoints exist. A restarted service reads the
topics again and arrives at the same state. `caught_up()` lets a caller wait
until everything published before the call has been folded (read-your-writes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from google.protobuf.message import DecodeError, Message
from kafka import TopicPartition

from learnerfit.runtime.bus import Bus
from learnerfit.runtime.faults import pause_point

log = logging.getLogger(__name__)


class TopicFollower:
    def __init__(self, bus: Bus, types_by_topic: Mapping[str, type[Message]], fold: Callable[[Message], None],
                 from_now: bool = False):
        """`from_now`: fold only what is published after the follower starts (e.g. a client of a stack that has
        run for weeks), not the whole log."""
        self.bus = bus
        self.from_now = from_now
        self.types = {bus.topic(t): message_type for t, message_type in types_by_topic.items()}
        self.fold = fold
        self._rounds = 0          # poll rounds finished
        self._caught_up_at = -1   # the last round that ended with every partition at its high-water mark
        self._running = False
        self._ready = threading.Event()  # read up to the high-water marks the topics had when it started
        self._changed = threading.Condition()

    def start(self, stop: threading.Event) -> threading.Thread:
        """Runs the follower on a thread of its own (until `stop`), and returns once it runs: `caught_up()` then
        waits for it rather than answering at once that it is not running."""
        thread = threading.Thread(target=self.run, args=(stop,), daemon=True, name="topic-follower")
        thread.start()
        with self._changed:
            self._changed.wait_for(lambda: self._running or not thread.is_alive(), timeout=30)
        return thread

    def run(self, stop: threading.Event) -> None:
        reader = self.bus.reader()
        with self._changed:
            self._running = True
        try:
            partitions = self._partitions(reader)
            reader.assign(partitions)
            start_ends = reader.end_offsets(partitions)
            since_ms = 0
            if self.from_now:
                since_ms = int(time.time() * 1000)
                # The brokers' end offsets, then the records' own times: Tansu (the local broker) reports the end of
                # a partition whose last batch holds several records as that batch's first offset + 1.
                for tp, offset in start_ends.items():
                    reader.seek(tp, offset)
            else:
                reader.seek_to_beginning(*partitions)
            while not stop.is_set():
                polled = reader.poll(timeout_ms=200)
                for tp, records in polled.items():
                    for record in records:
                        if record.timestamp >= since_ms:
                            self._apply(self.types[tp.topic], record.value, tp)
                if polled and not self._ready.is_set():
                    pause_point("follow.rebuilding")  # a fault trial's moment: part of the state folded back
                caught_up = all(reader.position(tp) >= (reader.highwater(tp) or 0) for tp in partitions)
                # Ready once past the ends taken at the start and the ends a fetch reported since (a partition's
                # high-water mark is unknown until its first fetch: none yet is not caught up).
                if not self._ready.is_set() and all(
                        reader.highwater(tp) is not None and reader.position(tp) >= start_ends[tp]
                        for tp in partitions) and caught_up:
                    self._ready.set()
                with self._changed:
                    self._rounds += 1
                    if caught_up:
                        self._caught_up_at = self._rounds
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._running = False
                self._changed.notify_all()
            reader.close()

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether the follower has read its topics up to where they ended when it started (the state a restarted
        service had before it stopped, at least), waiting up to timeout_s for it."""
        return self._ready.wait(timeout_s)

    def caught_up(self, timeout_s: float = 30.0) -> bool:
        """Waits until a poll round that began after this call ended caught up; False after timeout_s, or at once
        when the follower is not running (a service serving only its gRPC API folds nothing)."""
        with self._changed:
            asked_at = self._rounds
            return self._changed.wait_for(lambda: not self._running or self._caught_up_at > asked_at + 1,
                                          timeout=timeout_s) and self._running

    def _partitions(self, reader) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for topic in self.types for p in sorted(reader.partitions_for_topic(topic)
                                                                                 or ())]

    def _apply(self, message_type: type[Message], value: bytes, tp: TopicPartition) -> None:
        message = message_type()
        try:
            message.ParseFromString(value or b"")
        except DecodeError:
            log.warning("skipped an undecodable record on %s", tp.topic)
            return
        try:
            self.fold(message)
        except Exception:  # one bad record must not crash-loop the service that follows the topic
            log.exception("skipped a record on %s that could not be folded", tp.topic)
