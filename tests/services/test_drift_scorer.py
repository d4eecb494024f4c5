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

from learnerfit.domain.prompts import learner_conversation
from learnerfit.models.settings import SMOLLM2
from learnerfit.models.transformers_backend import TransformersScorer
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.v1 import records_pb2, services_pb2
from services import drift_scorer, registry
from tests.running import running

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
def registered(tiny_model, tmp_path_factory, broker):
    """A registry service whose v1 is the tiny random model (another learner checkpoint)."""
    root = tmp_path_factory.mktemp("registry")
    CheckpointRegistry(root).register(tiny_model, base_model="tiny", kind=records_pb2.CHECKPOINT_KIND_FULL)
    with running(registry.SPEC, broker, loops=False, registry_dir=str(root)) as (service, _stub, _bus):
        yield service.target


@pytest.fixture(scope="module")
def drift(registered, broker):
    with running(drift_scorer.SPEC, broker, loops=False, top_loss_tokens=5, registry={"target": registered},
                 learner={"max_batch_tokens": 512, "resume_newest": False}) as (_, stub, _bus):  # a small budget, so the batch splits
        yield stub


def _direct_pass(learner: TransformersScorer, question: str, solution: str) -> tuple[torch.Tensor, list[int]]:
    """One unbatched forward pass with full logits: the logits predicting each solution token, and those tokens."""
    problem = records_pb2.Problem(question=question)
    prompt = learner.tokenizer.apply_chat_template(learner_conversation(problem), tokenize=False,
                                                   add_generation_prompt=True)
    prompt_ids = learner.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    solution_ids = learner.tokenizer(solution, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = learner.model(input_ids=torch.tensor([prompt_ids + solution_ids])).logits[0].float()
    n = len(prompt_ids)
    return logits[n - 1 : n - 1 + len(solution_ids)], solution_ids


def _direct_logprobs(learner: TransformersScorer, question: str, solution: str) -> list[float]:
    """Log-probs of the solution tokens from one unbatched forward pass with full logits."""
    logits, solution_ids = _direct_pass(learner, question, solution)
    logprobs = torch.log_softmax(logits, dim=-1)
    return [logprobs[k, t].item() for k, t in enumerate(solution_ids)]


def test_nll_equals_a_direct_forward_pass(drift, learner):
    questions = [f"Calculate {i} + {i + 2}." for i in range(len(SOLUTIONS))]
    request = services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(i, q, s) for i, (q, s) in enumerate(zip(questions, SOLUTIONS, strict=True))])
    scored = drift.ScoreDrift(request).trajectories
    assert [t.id for t in scored] == [f"t{i}" for i in range(len(SOLUTIONS))]  # order kept through length sorting
    for trajectory, question, solution in zip(scored, questions, SOLUTIONS, strict=True):
        expected = _direct_logprobs(learner, question, solution)
        assert trajectory.scores.token_count == len(expected)
        assert math.log(trajectory.scores.ppl) == pytest.approx(-sum(expected) / len(expected), abs=1e-4)
        assert trajectory.scores.drift_checkpoint == "base"


def _direct_ranks(learner: TransformersScorer, question: str, solution: str) -> list[int]:
    """Each solution token's place in the learner's sorted next-token distribution (1: its top pick)."""
    logits, solution_ids = _direct_pass(learner, question, solution)
    return [int((torch.argsort(logits[k], descending=True) == t).nonzero()[0, 0]) + 1
            for k, t in enumerate(solution_ids)]


def test_rank_surprisal_ratio_is_summed_clipped_ranks_over_summed_nll_as_published(drift, learner):
    """Yang et al.'s RSR as their code computes it (ranks clipped at 100, then sums), from ranks found by sorting the
    learner's distribution, independently of the scorer's count of better tokens."""
    questions = [f"Calculate {i} + {i + 2}." for i in range(len(SOLUTIONS))]
    scored = drift.ScoreDrift(services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(i, q, s) for i, (q, s) in enumerate(zip(questions, SOLUTIONS, strict=True))]))
    unclipped_ranks: list[int] = []
    for trajectory, question, solution in zip(scored.trajectories, questions, SOLUTIONS, strict=True):
        ranks, logprobs = _direct_ranks(learner, question, solution), _direct_logprobs(learner, question, solution)
        clipped = [min(rank, 100) for rank in ranks]
        unclipped_ranks.extend(ranks)
        assert trajectory.scores.mean_token_rank == pytest.approx(sum(clipped) / len(clipped), rel=1e-6)
        assert trajectory.scores.rsr == pytest.approx(sum(clipped) / -sum(logprobs), rel=1e-3)
    assert max(unclipped_ranks) > 100  # the tiny learner ranks some tokens low: the clip is exercised
    assert len({round(t.scores.rsr, 3) for t in scored.trajectories}) > 1  # it tells traces apart


def test_each_segment_is_the_perplexity_of_one_quarter_of_the_solution(drift, learner):
    question = "Calculate 16 + 16."
    # A solution whose token count divides by four, so each quarter is exactly n/4 tokens.
    text = next(t for t in (SOLUTIONS[4] + " ok" * k for k in range(8))
                if len(_direct_logprobs(learner, question, t)) % 4 == 0)
    expected = _direct_logprobs(learner, question, text)
    quarter = len(expected) // 4
    scores = drift.ScoreDrift(services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(0, question, text)])).trajectories[0].scores
    assert scores.token_count == 4 * quarter
    assert list(scores.segment_ppl) == pytest.approx(
        [math.exp(-sum(expected[k * quarter:(k + 1) * quarter]) / quarter) for k in range(4)], rel=1e-4)


def test_top_loss_tokens_are_the_tokens_with_the_largest_summed_loss(drift, learner):
    question, text = "Calculate 16 + 16.", SOLUTIONS[4]
    ids = learner.tokenizer(text, add_special_tokens=False)["input_ids"]
    summed: dict[str, list[float]] = {}
    for token_id, logprob in zip(ids, _direct_logprobs(learner, question, text), strict=True):
        entry = summed.setdefault(learner.tokenizer.decode([token_id]), [0.0, 0])
        entry[0] -= logprob
        entry[1] += 1
    expected = sorted(summed.items(), key=lambda kv: kv[1][0], reverse=True)[:5]
    scores = drift.ScoreDrift(services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(0, question, text)])).trajectories[0].scores
    assert [(t.token, t.count) for t in scores.top_loss_tokens] == [(token, c) for token, (_, c) in expected]
    assert [t.total_loss for t in scores.top_loss_tokens] == pytest.approx([loss for _, (loss, _) in expected],
                                                                           abs=1e-3)


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


def test_a_registered_checkpoint_named_in_the_request_is_found_through_the_registry(drift):
    trajectory = _trajectory(0, "Calculate 1 + 2.", SOLUTIONS[0])
    base = drift.ScoreDrift(services_pb2.ScoreDriftRequest(trajectories=[trajectory])).trajectories[0]
    other = drift.ScoreDrift(services_pb2.ScoreDriftRequest(trajectories=[trajectory], checkpoint="v1")).trajectories[0]
    assert base.scores.drift_checkpoint == "base" and other.scores.drift_checkpoint == "v1"
    assert other.scores.ppl > 10 * base.scores.ppl  # v1 is a random model: a far worse learner of this text


@pytest.mark.parametrize(("checkpoint", "code", "details"), [
    ("v9", grpc.StatusCode.NOT_FOUND, "no checkpoint v9 in "),
    ("no-such-ckpt", grpc.StatusCode.INVALID_ARGUMENT, "checkpoint: 'no-such-ckpt' is not a registered version"),
])
def test_an_unknown_or_malformed_checkpoint_is_a_clear_error(drift, checkpoint, code, details):
    with pytest.raises(grpc.RpcError) as error:
        drift.ScoreDrift(services_pb2.ScoreDriftRequest(trajectories=[_trajectory(0, "Calculate 1 + 2.", "3")],
                                                        checkpoint=checkpoint))
    assert error.value.code() == code and error.value.details().startswith(details), error.value.details()


def test_empty_solution_has_no_perplexity(drift):
    scored = drift.ScoreDrift(services_pb2.ScoreDriftRequest(
        trajectories=[_trajectory(0, "Calculate 1 + 2.", ""), _trajectory(1, "Calculate 1 + 2.", "3")]))
    empty, short = scored.trajectories
    assert empty.scores.token_count == 0 and not empty.scores.HasField("ppl")
    assert short.scores.token_count == 1 and short.scores.HasField("ppl")
