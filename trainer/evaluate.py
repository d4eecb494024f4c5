"""Avg@k of a learner checkpoint on held-out problems: mean accuracy over k samples per problem (the paper's Avg@16)."""

from __future__ import annotations

from collections.abc import Sequence

from learnerfit.domain.answers import AnswerChecker, extract_final_answer
from learnerfit.domain.inference import SamplingParams
from learnerfit.domain.prompts import learner_conversation
from learnerfit.models.transformers_backend import TransformersGenerator
from learnerfit.v1 import records_pb2


def avg_at_k(model: str, problems: Sequence[records_pb2.Problem], *, k: int = 4, temperature: float = 0.7,
             max_new_tokens: int = 64, seed: int = 0, checker: AnswerChecker | None = None) -> float:
    """Share of correct samples over len(problems) x k, sampled at `temperature` with the learner's prompt."""
    generator = TransformersGenerator(model)
    samples = generator.generate([learner_conversation(p) for p in problems],
                                 SamplingParams(n=k, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    pairs = []
    for problem, completions in zip(problems, samples, strict=True):
        for completion in completions:
            answer, _ = extract_final_answer(completion.text)
            pairs.append((answer, problem.reference_answer))
    own = checker is None
    checker = checker or AnswerChecker()
    try:
        answered = [(a, r) for a, r in pairs if a is not None]
        verdicts = checker.check(answered)
    finally:
        if own:
            checker.close()
    return sum(v == records_pb2.VERDICT_CORRECT for v, _ in verdicts) / len(pairs)
