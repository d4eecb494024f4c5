"""`learnerfit dead-letters` against a broker described as a service's settings describe it (a config file's `bus`
section: here a topic prefix, as a shared cluster would have), and replays that are marked and not repeated by
accident."""

from __future__ import annotations

import os
import time
import uuid

import yaml

from learnerfit.cli import main
from learnerfit.domain import topics
from learnerfit.runtime.app import DEAD_LETTER
from learnerfit.runtime.bus import Bus
from learnerfit.v1 import records_pb2, runtime_pb2
from tests.kafka_helpers import read_topic


def test_a_replayed_letter_is_marked_and_replaying_it_again_is_refused_unless_asked(broker, tmp_path, capsys,
                                                                                       monkeypatch):
    prefix = f"cluster-{uuid.uuid4().hex[:8]}-"
    config = tmp_path / "config.yaml"  # a service's settings file: other sections are ignored
    config.write_text(yaml.safe_dump({"bus": {"bootstrap_servers": broker.bootstrap_servers, "topic_prefix": prefix},
                                      "learner": {"model": "anything"}}))
    monkeypatch.delenv("LEARNERFIT_CONFIG", raising=False)
    bus = Bus(broker.bootstrap_servers, client_id="dead-letter-test", topic_prefix=prefix)
    problem = records_pb2.Problem(id="p7", batch_id="b", question="Calculate 3 + 4.", reference_answer="7")
    bus.ensure_topics([topics.PROBLEMS, DEAD_LETTER], partitions=1)
    bus.publish([(DEAD_LETTER, runtime_pb2.DeadLetter(
        id="problems/0/7", stage="generator", reason="RuntimeError: back end down", transient=True,
        source_topic=topics.PROBLEMS, record_id="p7", record_type="learnerfit.v1.Problem", problem_id="p7",
        value=problem.SerializeToString(), attempts=4))])
    try:
        command = ["dead-letters", "--bus-config", str(config)]
        assert main(command) == 0
        assert "problems/0/7" in capsys.readouterr().out
        assert main([*command, "--replay", "problems/0/7"]) == 0
        assert main([*command, "--replay", "problems/0/7"]) == 1
        refused = capsys.readouterr().err
        assert "was replayed at" in refused and "--again" in refused
        assert [records_pb2.Problem.FromString(r.value) for r in read_topic(bus, topics.PROBLEMS, at_least=1)] \
            == [problem]  # once, not twice
        assert main(command) == 0
        listed = capsys.readouterr().out
        assert "problems/0/7" in listed and time.strftime("%Y-%m-%d", time.gmtime()) in listed  # replayed: when
        assert main([*command, "--replay", "problems/0/7", "--again"]) == 0
        assert len(read_topic(bus, topics.PROBLEMS, at_least=2)) == 2
        assert "LEARNERFIT_CONFIG" not in os.environ  # the file was read, not put in the process's environment
    finally:
        bus.close()
