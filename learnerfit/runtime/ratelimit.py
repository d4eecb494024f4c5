"""A rate limit shared by every replica of a service (a hosted Oracle's requests and tokens per minute), arbitrated
by the broker's log rather than by a coordinator.

Before each request a replica appends a lease (requests, tokens) to the `rate-leases` topic, keyed by the limit, so
every lease of one limit lands on one partition in one order. Every replica reads that partition and decides each
lease the same way, in that order: granted when the leases granted in the window before it, plus it, stay within the
limits. So the replicas agree on every grant without talking to each other, and the limit holds across all of them
(one limit per process would let N replicas send N times the provider's rate). The asker waits until it has read its
own lease back (one broker round trip, about 0.1 s here); a refused lease is asked for again once the window has
room. A replica starting reads the leases of the last three windows first.

Tokens are counted as the provider counts them when it admits a request: the prompt's estimate plus the most the
reply may take (`max_completion_tokens`), so a granted request never needs more than it was granted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from kafka import TopicPartition
from pydantic import Field

from learnerfit.errors import InvalidInput, Unavailable
from learnerfit.runtime.bus import Bus
from learnerfit.section import Section
from learnerfit.v1 import runtime_pb2

log = logging.getLogger(__name__)

RATE_LEASES = "rate-leases"
Admit = Callable[[int, int], None]  # (requests, tokens): blocks until the shared limit has room for them


class RateLimitSettings(Section):
    """A provider's rate limits, shared by every replica of the service (unset: no limit but the provider's 429s)."""

    requests_per_minute: int | None = Field(None, ge=1, description="Most requests all replicas together send per "
                                                                    "window (a minute, unless window_s says).")
    tokens_per_minute: int | None = Field(None, ge=1, description="Most tokens all replicas together may take per "
                                                                  "window, counted as providers do: the prompt plus "
                                                                  "the most the reply may take.")
    window_s: float = Field(60.0, gt=0, le=3600, description="The window the two limits count over.")


class SharedRateLimit:
    def __init__(self, bus: Bus, limit: str, settings: RateLimitSettings):
        self.bus, self.limit, self.settings = bus, limit, settings
        self.window_ms = int(settings.window_s * 1000)
        self._granted: deque[tuple[int, int, int]] = deque()  # (at_ms, requests, tokens), in log order
        self._asked: set[str] = set()  # this replica's leases not read back yet
        self._decided: dict[str, bool] = {}
        self._running = False
        self._changed = threading.Condition()

    def admit(self, requests: int, tokens: int) -> None:
        """Blocks until every replica's reading of the log grants these requests and tokens."""
        limits = self.settings
        if (limits.requests_per_minute and requests > limits.requests_per_minute) or (
                limits.tokens_per_minute and tokens > limits.tokens_per_minute):
            raise InvalidInput("tokens_per_minute", f"one request may take {tokens} tokens, more than the whole "
                                                    f"limit of {limits.tokens_per_minute} per {limits.window_s:g}s")
        if not self.wait_running():
            raise Unavailable(f"rate limit {self.limit}: not reading {RATE_LEASES}")
        while True:
            lease = runtime_pb2.RateLease(id=uuid.uuid4().hex, limit=self.limit, requests=requests, tokens=tokens,
                                          at_ms=int(time.time() * 1000))
            with self._changed:
                self._asked.add(lease.id)
            self.bus.publish([(RATE_LEASES, lease)])
            with self._changed:
                self._changed.wait_for(lambda: lease.id in self._decided or not self._running, timeout=30)
                self._asked.discard(lease.id)
                granted = self._decided.pop(lease.id, None)
                room_at_ms = min((at for at, _, _ in self._granted), default=0) + self.window_ms
            if granted:
                return
            if granted is None:
                raise Unavailable(f"rate limit {self.limit}: its lease was not read back from {RATE_LEASES}")
            # Refused: asked again once the oldest grant leaves the window (jittered: replicas do not ask together).
            time.sleep(max(0.05, room_at_ms / 1000 - time.time()) * (1 + 0.2 * random.random()))

    def run(self, stop: threading.Event) -> None:
        """Reads the leases (a service's background loop) from three windows back, deciding each in log order."""
        reader = self.bus.reader()
        topic = self.bus.topic(RATE_LEASES)
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
            reader.assign(partitions)
            since = reader.offsets_for_times({tp: int(time.time() * 1000) - 3 * self.window_ms for tp in partitions})
            for tp in partitions:
                if since[tp] is None:
                    reader.seek_to_end(tp)
                else:
                    reader.seek(tp, since[tp].offset)
            with self._changed:
                self._running = True
                self._changed.notify_all()
            while not stop.is_set():
                for records in reader.poll(timeout_ms=100).values():
                    for record in records:
                        lease = runtime_pb2.RateLease.FromString(record.value)
                        if lease.limit == self.limit:
                            self._decide(lease)
        finally:
            with self._changed:
                self._running = False
                self._changed.notify_all()
            reader.close()

    def wait_running(self, timeout_s: float = 30.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._running, timeout=timeout_s)

    def _decide(self, lease: runtime_pb2.RateLease) -> None:
        limits = self.settings
        with self._changed:
            while self._granted and self._granted[0][0] < lease.at_ms - 2 * self.window_ms:
                self._granted.popleft()
            window = [(r, t) for at, r, t in self._granted if at > lease.at_ms - self.window_ms]
            granted = (limits.requests_per_minute is None
                       or sum(r for r, _ in window) + lease.requests <= limits.requests_per_minute) and (
                limits.tokens_per_minute is None or sum(t for _, t in window) + lease.tokens <= limits.tokens_per_minute)
            if granted:
                self._granted.append((lease.at_ms, lease.requests, lease.tokens))
            if lease.id in self._asked:
                self._decided[lease.id] = granted
            self._changed.notify_all()


def shared_rate_limit(bus: Bus, settings: RateLimitSettings, limit: str
                      ) -> tuple[Admit | None, list[Callable[[threading.Event], None]]]:
    """(admit, background loops) for a service's settings: (None, []) when it sets no limit."""
    if settings.requests_per_minute is None and settings.tokens_per_minute is None:
        return None, []
    shared = SharedRateLimit(bus, limit, settings)
    return shared.admit, [shared.run]
