"""Avg@k of a learner checkpoint on held-out problems: mean accuracy over k samples per problem (the paper's Avg@16).

Sampled on the engine `train.evaluator` names (the generator interface, as the generator service samples), so a GPU
pod evaluates on its GPU, on vLLM or transformers, rather than in a one-thread CPU loop."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from learnerfit.domain.answers import extract_final_answer
from learnerfit.domain.inference import SamplingParams, TextGenerator
from learnerfit.domain.problems import family_options, from_reasoning_gym
from learnerfit.domain.prompts import learner_conversation
from learnerfit.models.answers import AnswerChecker
from learnerfit.models.factory import LearnerModels, make_text_generator
from learnerfit.models.settings import EngineSettings
from learnerfit.paths import default_cache_dir
from learnerfit.v1 import records_pb2
from trainer.config import TrainSettings

log = logging.getLogger(__name__)
HELD_OUT_SEED = 10_000  # a stream of problems no batch draws by default (batches start at seed 0)


def avg_at_k(generator: TextGenerator, problems: Sequence[records_pb2.Problem], *, k: int = 4,
             temperature: float = 0.7, max_new_tokens: int = 64, seed: int = 0,
             checker: AnswerChecker | None = None) -> float:
    """Share of correct samples over len(problems) x k, sampled at `temperature` with the learner's prompt."""
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


class HeldOutEvaluator:
    """{"avg@k": ...} of the base model or a checkpoint, on `settings`' held-out problems and engine.

    One per trainer: a vLLM engine starts once and serves every checkpoint after (an adapter per request, or
    merged with LoRA off), as the learner services' engines do; a transformers model loads per evaluation."""

    def __init__(self, settings: TrainSettings, cache_dir: Path | None = None):
        self.settings = settings
        engine = EngineSettings(model=settings.base_model, **settings.evaluator.model_dump())
        self._learners = LearnerModels(engine, cache_dir or default_cache_dir(), make_text_generator)

    @cached_property
    def problems(self) -> list[records_pb2.Problem]:
        """Drawn at the first evaluation, not at the trainer's start (reasoning-gym is slow to import)."""
        settings = self.settings
        if not settings.eval_problems:
            return []
        return from_reasoning_gym(settings.eval_family, settings.eval_problems, seed=HELD_OUT_SEED,
                                  options=family_options(settings.eval_family))

    def generator(self, model: Path | str) -> TextGenerator:
        """What samples `model` (the base model, or a checkpoint's folder)."""
        return self._learners.load(str(model))

    def __call__(self, model: Path | str) -> dict[str, float]:
        if not self.problems:
            return {}
        generator = self.generator(model)
        log.info("held-out avg@%d of %s on %s (%s)", self.settings.eval_k, model, self.settings.evaluator.backend,
                 self.settings.evaluator.device)
        return {f"avg@{self.settings.eval_k}": avg_at_k(generator, self.problems, k=self.settings.eval_k)}
