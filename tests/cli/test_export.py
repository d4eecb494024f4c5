"""Exporting a batch's curated examples over real gRPC, to JSONL and to Parquet that `datasets` reads back."""

from __future__ import annotations

import json

from datasets import Dataset

from learnerfit.cli.batches import export_batch
from learnerfit.v1 import records_pb2, services_pb2_grpc
from learnerfit.local.processes import channel
from learnerfit.domain.prompts import training_messages
from learnerfit.domain.batches import BatchLedger
from services.gateway.servicer import GatewayServicer
from services.gateway.settings import GatewaySettings


def test_curated_examples_export_as_jsonl_and_parquet(tmp_path):
    ledger = BatchLedger()
    problem = records_pb2.Problem(id="p0", batch_id="b", question="Calculate 1 + 2.", reference_answer="3",
                                  sampling=records_pb2.SamplingSpec(samples_per_problem=1))
    ledger.apply(problem)
    ledger.apply(records_pb2.Trajectory(id="t0", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                        scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT, ppl=1.3)))
    ledger.apply(records_pb2.CurationDecision(batch_id="b", problem_id="p0", curated=True))
    example = records_pb2.CuratedExample(
        id="e0", trajectory_id="t0", problem_id="p0", batch_id="b", origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
        messages=training_messages(problem, "1 + 2 = 3\nFinal answer: 3"), policy="utility", reason="best",
        utility=0.7, scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT, reward=1.0, ppl=1.3))
    ledger.apply(example)
    server = GrpcServer("127.0.0.1", 0, workers=2, max_message_bytes=1024 * 1024)
    servicer = GatewayServicer(GatewaySettings(), None, ledger)
    server.add(lambda s: services_pb2_grpc.add_GatewayServicer_to_server(servicer, s), ["learnerfit.v1.Gateway"])
    server.start()
    try:
        with channel(f"127.0.0.1:{server.port}") as ch:
            gateway = services_pb2_grpc.GatewayStub(ch)
            assert export_batch(gateway, "b", tmp_path / "out.jsonl") == 1
            assert export_batch(gateway, "b", tmp_path / "out.parquet") == 1
    finally:
        server.stop(0)
    [line] = (tmp_path / "out.jsonl").read_text().splitlines()
    record = json.loads(line)
    rows = Dataset.from_parquet(str(tmp_path / "out.parquet")).to_list()
    assert len(rows) == 1 and not (tmp_path / "out.parquet.partial").exists()
    assert rows[0]["messages"] == record["messages"] and rows[0]["messages"][-1]["content"].endswith("Final answer: 3")
    assert rows[0]["origin"] == "learner_sample" and rows[0]["utility"] == 0.7 and rows[0]["policy"] == "utility"
