"""A follower started `from_now` folds only what is published after it starts: a client of a stack that has run
for a while (`learnerfit stream` given its addresses) counts its own records, not the whole log."""

from __future__ import annotations

import threading

from learnerfit.runtime.follow import TopicFollower
from learnerfit.v1 import records_pb2


def test_a_follower_from_now_folds_only_records_published_after_it_started(bus, fresh):
    topic = fresh("follow")
    bus.ensure_topics([topic], partitions=3)
    # Three records in one send: on Tansu two of them share a partition's last batch, whose end offset it misreports.
    bus.publish([(topic, records_pb2.Problem(id=f"old{i}")) for i in range(3)])
    seen: list[str] = []
    follower = TopicFollower(bus, {topic: records_pb2.Problem}, lambda problem: seen.append(problem.id),
                             from_now=True)
    stop = threading.Event()
    thread = follower.start(stop)
    try:
        assert follower.caught_up()  # running, so it waits for a poll round instead of answering False at once
        bus.publish([(topic, records_pb2.Problem(id=f"new{i}")) for i in range(2)])
        assert follower.caught_up()
        assert sorted(seen) == ["new0", "new1"]
    finally:
        stop.set()
        thread.join(timeout=10)
