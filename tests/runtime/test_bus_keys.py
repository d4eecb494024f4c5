"""Each record's message declares its bus id and partition key (protos/learnerfit/v1/bus.proto); the bus reads the
declaration and knows no record type. A record published lands keyed and headed as its message says."""

from __future__ import annotations

import pytest

from learnerfit.runtime.bus import ID_HEADER, header, record_id, record_key
from learnerfit.v1 import records_pb2, runtime_pb2
from tests.kafka_helpers import read_topic


def test_every_record_type_on_the_bus_declares_its_id_and_key():
    problem = records_pb2.Problem(id="p1")
    declared = [
        (problem, ("p1", "p1")),
        (records_pb2.Trajectory(id="t1", problem=problem), ("t1", "p1")),
        (records_pb2.CuratedExample(id="e1", problem_id="p1"), ("e1", "p1")),
        (records_pb2.CurationDecision(id="d1", problem_id="p1"), ("d1", "p1")),
        (records_pb2.Checkpoint(version="v3"), ("v3", "v3")),  # no partition declared: keyed by its id
        (runtime_pb2.DeadLetter(id="scored/0/7", problem_id="p1"), ("scored/0/7", "p1")),
    ]
    assert [(record_id(m), record_key(m)) for m, _ in declared] == [ids for _, ids in declared]
    # A trajectory without its problem still gets a key (its own id), not an empty one shared by all such records.
    assert record_key(records_pb2.Trajectory(id="t2")) == "t2"


def test_a_message_that_declares_no_keys_is_refused_by_name():
    with pytest.raises(TypeError, match=r"learnerfit.v1.BatchStatus cannot go on the bus: .*declares no record id"):
        record_id(records_pb2.BatchStatus(batch_id="b1"))


def test_a_published_record_carries_its_declared_key_and_id(bus, fresh):
    topic = fresh("keys")
    bus.ensure_topics([topic], partitions=3)
    bus.publish([(topic, records_pb2.Trajectory(id="t9", problem=records_pb2.Problem(id="p9")))])
    [record] = read_topic(bus, topic)
    assert record.key == b"p9" and header(record, ID_HEADER) == "t9"
