"""Drift scorer on the real learner (SmolLM2-135M), over real gRPC.

Checks the numbers themselves: the service's per-trajectory NLL equals a plain
transformers forward pass over the same tokens, segments and top tokens are
consistent with it, and the measurement says something true — the learner's own
greedy answer costs it less than an Oracle-style LaTeX rewrite of the same solution.
"""

from __future__ import annotations

import math

import grpc
import pytest
import torch

from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.backends.transformers_backend import TransformersScorer
from services.backends.weights import SMOLLM2
from services.common.grpc_runtime import GrpcServer, channel
from services.common.prompts import learner_conversation
from services.drift_scorer.servicer import DriftScorerServicer
from services.drift_scorer.stage import DriftScorer, LearnerCheckpoints

SOLUTIONS = [
    "7 - 3 = 4\nFinal answer: 4",
    "To solve this, we add the two numbers: 5 + 8 = 13. So the total is 13.\nFinal answer: 13",
    "We compute $\\frac{12}{4} = 3$, hence the result is $\\boxed{3}$.",
    "9",
    "1 + 1 = 2\n2 + 2 = 4\n4 + 4 = 8\n8 + 8 = 16\n16 + 16 = 32\nFinal answer: 32",
]


def _trajectory(i: int, question: str, text: str) -> records_pb2.Trajectory:
    return records_pb2.Trajectory(id=f"t{i}", text=text,
                                  problem=records_pb2.Problem(id=f"p{i}", question=question, reference_answer="0"))


@pytest.fixture(scope="module")
def learner():
    return TransformersScorer(SMOLLM2, max_batch_tokens=512)  # a small budget, so the batch splits


@pytest.fixture(scope="module")
def drift(learner, tiny_model):
    checkpoints = LearnerCheckpoints("base", learner, load=lambda path: TransformersScorer(path),
                                     checkpoints_dir=tiny_model.parent, max_loaded=2)
    servicer = DriftScorerServicer(DriftScorer(checkpoints, top_tokens=5), max_trajectories=16)
    server = GrpcServer("127.0.0.1", 0, workers=2, max_message_bytes=4 * 1024 * 1024)
    server.add(lambda s: services_pb2_grpc.add_DriftScorerServicer_to_server(servicer, s),
               ["learnerfit.v1.DriftScorer"])
    server.start()
    with channel(f"127.0.0.1:{server.port}") as ch:
        yield services_pb2_grpc.DriftScorerStub(ch)
    server.stop(0)


def _direct_nll(learner: TransformersScorer, question: str, solution: str) -> tuple[float, int]:
    """Mean NLL of the solution tokens from one unbatched forward pass with full logits."""
    problem = records_pb2.Problem(question=question)
    prompt = learner.tokenizer.apply_chat_template(learner_conversation(problem), tokenize=False,
                                                   add_generation_prompt=True)
    prompt_ids = learner.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    solution_ids = learner.tokenizer(solution, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + solution_ids])
    with torch.inference_mode():
        logprobs = torch.log_softmax(learner.model(input_ids=ids).logits[0].float(), dim=-1)
    n = len(prompt_ids)
    nll = -sum(logprobs[n - 1 + k, t].item() for k, t in enumerate(solution_ids))
    return nll / len(solution_ids), len(solution_ids)


def test_nll_equals_a_direct_forward_pass(drift, learner):
    questions = [f"Calculate {i} + {i + 2}." for i in range(len(SOLUTIONS))]
    request = services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(i, q, s) for i, (q, s) in enumerate(zip(questions, SOLUTIONS, strict=True))])
    scored = drift.ScoreDrift(request).trajectories
    assert [t.id for t in scored] == [f"t{i}" for i in range(len(SOLUTIONS))]  # order kept through length sorting
    for trajectory, question, solution in zip(scored, questions, SOLUTIONS, strict=True):
        expected_nll, expected_count = _direct_nll(learner, question, solution)
        assert trajectory.scores.token_count == expected_count
        assert math.log(trajectory.scores.ppl) == pytest.approx(expected_nll, abs=1e-4)
        assert trajectory.scores.drift_checkpoint == "base"


def test_segments_and_top_tokens_agree_with_the_whole(drift):
    text = SOLUTIONS[4]
    scores = drift.ScoreDrift(services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(0, "Calculate 16 + 16.", text)])).trajectories[0].scores
    n = scores.token_count
    assert len(scores.segment_ppl) == 4
    sizes = [round((k + 1) * n / 4) - round(k * n / 4) for k in range(4)]
    # Total NLL is the sum of the segments' NLL.
    total = sum(size * math.log(p) for size, p in zip(sizes, scores.segment_ppl, strict=True))
    assert total == pytest.approx(n * math.log(scores.ppl), abs=1e-6)
    losses = [t.total_loss for t in scores.top_loss_tokens]
    assert len(losses) == 5 and losses == sorted(losses, reverse=True)
    assert sum(t.count for t in scores.top_loss_tokens) <= n
    assert sum(losses) <= n * math.log(scores.ppl) + 1e-6


def test_learner_style_costs_less_than_an_oracle_style_rewrite(drift, learner):
    """The paper's premise, measured: the learner's own greedy answer has lower perplexity than LaTeX prose."""
    question = "Calculate 6 + 7."
    own = _greedy(learner, question)
    oracle = ("We need to evaluate the expression $6 + 7$. Adding the two integers yields "
              "$$6 + 7 = 13.$$ Therefore, the final result is $\\boxed{13}$.")
    scored = drift.ScoreDrift(services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(0, question, own), _trajectory(1, question, oracle)])).trajectories
    assert scored[0].scores.ppl < scored[1].scores.ppl / 2, (own, scored[0].scores.ppl, scored[1].scores.ppl)
    latex = {"$", "$$", "\\", "boxed", "{", "}"}
    assert any(t.token.strip() in latex or "$" in t.token for t in scored[1].scores.top_loss_tokens)


def _greedy(learner: TransformersScorer, question: str) -> str:
    conversation = learner_conversation(records_pb2.Problem(question=question))
    prompt = learner.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    ids = learner.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        out = learner.model.generate(**ids, do_sample=False, max_new_tokens=40,
                                     pad_token_id=learner.tokenizer.pad_token_id)
    return learner.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_another_checkpoint_by_name_and_unknown_names(drift, tiny_model):
    trajectory = _trajectory(0, "Calculate 1 + 2.", SOLUTIONS[0])
    base = drift.ScoreDrift(services_pb2.ScoreDriftRequest(trajectories=[trajectory])).trajectories[0]
    other = drift.ScoreDrift(services_pb2.ScoreDriftRequest(trajectories=[trajectory],
                                                            checkpoint=tiny_model.name)).trajectories[0]
    assert other.scores.drift_checkpoint == tiny_model.name
    assert other.scores.ppl != pytest.approx(base.scores.ppl, rel=1e-3)  # a random model is a different learner
    with pytest.raises(grpc.RpcError) as error:
        drift.ScoreDrift(services_pb2.ScoreDriftRequest(trajectories=[trajectory], checkpoint="no-such-ckpt"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "checkpoint" in error.value.details() and "no-such-ckpt" in error.value.details()


def test_empty_solution_has_no_perplexity(drift):
    scored = drift.ScoreDrift(services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(0, "Calculate 1 + 2.", ""), _trajectory(1, "Calculate 1 + 2.", "3")]))
    empty, short = scored.trajectories
    assert empty.scores.token_count == 0 and not empty.scores.HasField("ppl")
    assert short.scores.token_count == 1 and short.scores.HasField("ppl")
