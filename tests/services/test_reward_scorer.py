"""The outcome reward model: trained here, scored in-process and through a real Triton server, same numbers."""

from __future__ import annotations

import json

import grpc
import pytest

from learnerfit.local.triton import TritonServer
from learnerfit.models.triton_repository import write_model_repository
from learnerfit.models.reward import TransformersRewardModel
from learnerfit.models.settings import REWARD_MINILM
from learnerfit.models.triton_backend import TritonRewardModel
from learnerfit.v1 import records_pb2, services_pb2
from services.reward_scorer import SPEC
from tests.running import running
from trainer.reward_model import arithmetic_pairs

FRESH_SEED = 7  # neither the training nor the held-out stream


@pytest.fixture(scope="module")
def in_process(reward_model_dir):
    return TransformersRewardModel(str(reward_model_dir), max_batch_sequences=8)


@pytest.fixture(scope="module")
def triton(reward_model_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("triton")
    # A small max_batch_size, so the client's larger batches must be split to it (the server refuses larger ones).
    repo = write_model_repository(work / "models", reward_model_dir, max_batch_size=8)
    with TritonServer(repo, work) as server:
        yield server


def test_reward_model_prefers_correct_traces(in_process, reward_model_dir):
    report = json.loads((reward_model_dir / "reward_report.json").read_text())
    assert report["held_out_accuracy"] >= 0.65, report
    pairs = arithmetic_pairs(128, FRESH_SEED)
    chosen = in_process.rewards([p["question"] for p in pairs], [p["chosen"] for p in pairs])
    rejected = in_process.rewards([p["question"] for p in pairs], [p["rejected"] for p in pairs])
    accuracy = sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)
    assert accuracy >= 0.65, accuracy  # 0.5 is chance


def test_triton_and_in_process_scores_agree(triton, in_process, reward_model_dir):
    pairs = arithmetic_pairs(20, FRESH_SEED)
    questions = [p["question"] for p in pairs] * 2
    # Varied lengths, so batches are padded differently inside each path.
    solutions = [p["chosen"] for p in pairs] + [p["rejected"] + " Let me check." * (i % 5) for i, p in
                                                 enumerate(pairs)]
    remote = TritonRewardModel(triton.url, "reward_model", model_name=REWARD_MINILM, tokenizer=str(reward_model_dir),
                               max_batch_sequences=1024)
    try:
        assert remote.batch_limit == 8  # the served model's max_batch_size, read from the server
        assert remote.rewards(questions, solutions) == pytest.approx(in_process.rewards(questions, solutions),
                                                                     abs=1e-4)
    finally:
        remote.close()


def test_the_gpu_model_configuration_is_its_own(tmp_path, reward_model_dir):
    """The GPU deployment's configuration: written whole, GPU instances, bfloat16; the CPU one untouched."""
    gpu = (write_model_repository(tmp_path / "gpu", reward_model_dir, gpu=True) / "reward_model")
    cpu = (write_model_repository(tmp_path / "cpu", reward_model_dir) / "reward_model")
    assert sorted(p.name for p in gpu.iterdir()) == ["1", "config.pbtxt"]
    config = (gpu / "config.pbtxt").read_text()
    assert "kind: KIND_GPU" in config and 'string_value: "bfloat16"' in config and "@" not in config
    assert "kind: KIND_CPU" in (cpu / "config.pbtxt").read_text()


def test_reward_scorer_service_scores_quality_through_triton(triton, in_process, reward_model_dir, broker):
    problem = records_pb2.Problem(id="p", question="Calculate 9 - 4.", reference_answer="5")
    texts = ["9 - 4 = 5\nFinal answer: 5", "9 - 4 = 6\nFinal answer: 6", "9 - 4 is five"]
    reward = {"backend": "triton", "model": str(reward_model_dir), "triton_url": triton.url}
    with running(SPEC, broker, loops=False, reward=reward, intake={"max_trajectories_per_request": 16}) as (_, stub, _):
        scored = stub.ScoreTrajectories(services_pb2.ScoreTrajectoriesRequest(
            trajectories=[records_pb2.Trajectory(id=f"t{i}", problem=problem, text=t)
                          for i, t in enumerate(texts)])).trajectories
        with pytest.raises(grpc.RpcError) as error:
            stub.ScoreTrajectories(services_pb2.ScoreTrajectoriesRequest(
                trajectories=[records_pb2.Trajectory(id="x", problem=problem, text="1")] * 17))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # a size limit (AIP-193)
    assert error.value.details() == ("trajectories: 17 trajectories, at most 16 allowed "
                                     "(setting intake.max_trajectories_per_request)")
    assert [t.scores.verdict for t in scored] == [records_pb2.VERDICT_CORRECT, records_pb2.VERDICT_INCORRECT,
                                                  records_pb2.VERDICT_UNPARSED]
    assert all(t.scores.HasField("reward") and t.scores.reward_model == str(reward_model_dir) for t in scored)
    # The service records exactly what the reward model says of each (question, solution).
    expected = in_process.rewards([problem.question] * 3, texts)
    assert [t.scores.reward for t in scored] == pytest.approx(expected, abs=1e-4)


def test_triton_client_names_a_missing_model(triton, reward_model_dir):
    with pytest.raises(RuntimeError, match="no ready model 'nope'"):
        TritonRewardModel(triton.url, "nope", model_name="x", tokenizer=str(reward_model_dir))
