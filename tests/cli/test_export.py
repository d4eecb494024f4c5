"""Exporting a batch's curated examples over real gRPC, to JSONL and to Parquet that `datasets` reads back."""

from __future__ import annotations

import json
import time

import grpc
from datasets import Dataset

from learnerfit.cli.batches import export_batch
from learnerfit.domain import topics
from learnerfit.domain.prompts import training_messages
from learnerfit.v1 import records_pb2, services_pb2
from services.gateway import SPEC
from tests.running import running


def _wait_until_complete(gateway, batch_id: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id)).state == \
                    records_pb2.BATCH_STATE_COMPLETE:
                return
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND  # not folded yet
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} never completed")


def test_curated_examples_export_as_jsonl_and_parquet(tmp_path, broker):
    problem = records_pb2.Problem(id="p0", batch_id="b", question="Calculate 1 + 2.", reference_answer="3",
                                  sampling=records_pb2.SamplingSpec(samples_per_problem=1))
    sample = records_pb2.Trajectory(id="t0", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                    scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT, ppl=1.3))
    decision = records_pb2.CurationDecision(id="d0", batch_id="b", problem_id="p0", curated=True)
    example = records_pb2.CuratedExample(
        id="e0", trajectory_id="t0", problem_id="p0", batch_id="b", origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
        messages=training_messages(problem, "1 + 2 = 3\nFinal answer: 3"), policy="utility", reason="best",
        utility=0.7, scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT, reward=1.0, ppl=1.3))
    # The gateway learns of the batch the way it always does: by folding the pipeline's topics.
    with running(SPEC, broker) as (_, gateway, bus):
        bus.publish([(topics.PROBLEMS, problem), (topics.SCORED, sample), (topics.DECISIONS, decision),
                     (topics.CURATED, example)])
        _wait_until_complete(gateway, "b")
        assert export_batch(gateway, "b", tmp_path / "out.jsonl") == 1
        assert export_batch(gateway, "b", tmp_path / "out.parquet") == 1
    [line] = (tmp_path / "out.jsonl").read_text().splitlines()
    record = json.loads(line)
    rows = Dataset.from_parquet(str(tmp_path / "out.parquet")).to_list()
    assert len(rows) == 1 and not (tmp_path / "out.parquet.partial").exists()
    assert rows[0]["messages"] == record["messages"] and rows[0]["messages"][-1]["content"].endswith("Final answer: 3")
    assert rows[0]["origin"] == "learner_sample" and rows[0]["utility"] == 0.7 and rows[0]["policy"] == "utility"
