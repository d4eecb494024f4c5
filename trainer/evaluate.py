"""Avg@k of a learner checkpoint on held-out problems: mean accuracy over k samples per problem (the paper's Avg@16).

Sampled on the engine `train.evaluator` names (the generator interface, as the generator service samples), so a GPU
pod evaluates on its GPU, on vLLM or transformers, rather than in a one-thread CPU loop."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from learnerfit.domain.answers import extract_final_answer, extract_first_answer
from learnerfit.domain.ids import stable_id
from learnerfit.domain.inference import SamplingParams, TextGenerator
from learnerfit.domain.problems import family_options, from_jsonl, from_reasoning_gym
from learnerfit.domain.prompts import learner_conversation
from learnerfit.models.answers import AnswerChecker
from learnerfit.models.factory import LearnerModels, make_text_generator
from learnerfit.models.settings import EngineSettings
from learnerfit.paths import default_cache_dir
from learnerfit.v1 import records_pb2, services_pb2
from trainer.config import TrainSettings

log = logging.getLogger(__name__)
HELD_OUT_SEED = 10_000  # a stream of problems no batch draws by default (batches start at seed 0)
EVAL_TEMPERATURE = 0.7  # held-out samples are drawn as the learner samples a batch


def held_out_samples(generator: TextGenerator, problems: Sequence[records_pb2.Problem], *, k: int = 4,
                     temperature: float = EVAL_TEMPERATURE, max_new_tokens: int = 64, seed: int = 0,
                     checker: AnswerChecker | None = None) -> list[services_pb2.HeldOutSample]:
    """k samples of each problem at `temperature` with the learner's prompt, each judged against its reference."""
    samples = generator.generate([learner_conversation(p) for p in problems],
                                 SamplingParams(n=k, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    judged = [services_pb2.HeldOutSample(problem_id=problem.id, sample_index=i, text=c.text, truncated=c.truncated,
                                         token_count=c.token_count, answer=extract_final_answer(c.text)[0] or "",
                                         first_answer=extract_first_answer(c.text) or "")
              for problem, completions in zip(problems, samples, strict=True) for i, c in enumerate(completions)]
    references = [p.reference_answer for p in problems for _ in range(k)]
    # One check call for both readings: the last answer (the verdict) and the first.
    asked = [(s.answer, r) for s, r in zip(judged, references, strict=True) if s.answer]
    asked += [(s.first_answer, r) for s, r in zip(judged, references, strict=True) if s.first_answer]
    own = checker is None
    checker = checker or AnswerChecker()
    try:
        verdicts = iter(checker.check(asked))
    finally:
        if own:
            checker.close()
    for sample in judged:
        sample.verdict = next(verdicts)[0] if sample.answer else records_pb2.VERDICT_UNPARSED
    for sample in judged:
        sample.first_correct = bool(sample.first_answer) and next(verdicts)[0] == records_pb2.VERDICT_CORRECT
    return judged


def summary(samples: Sequence[services_pb2.HeldOutSample], k: int) -> dict[str, float]:
    """Avg@k (correct among all samples), and what the misses were: no final answer, cut at the token cap, and
    accuracy among the samples that gave an answer (reasoning, with format set apart)."""
    correct = sum(s.verdict == records_pb2.VERDICT_CORRECT for s in samples)
    parsed = sum(s.verdict != records_pb2.VERDICT_UNPARSED for s in samples)
    total = max(len(samples), 1)
    return {f"avg@{k}": correct / total, "unparsed": (len(samples) - parsed) / total,
            "truncated": sum(s.truncated for s in samples) / total, "parsed_accuracy": correct / max(parsed, 1),
            "first_answer_accuracy": sum(s.first_correct for s in samples) / total}


def outcomes(samples: Sequence[services_pb2.HeldOutSample]) -> dict[str, list[bool]]:
    """Problem id -> whether each of its samples was right: what paired comparisons resample (a study's arms, the
    promotion gate)."""
    by_problem: dict[str, list[bool]] = {}
    for sample in samples:
        if not sample.problem_id:
            raise ValueError("a held-out sample without its problem's id: a paired comparison needs them")
        by_problem.setdefault(sample.problem_id, []).append(sample.verdict == records_pb2.VERDICT_CORRECT)
    return by_problem


def avg_at_k(generator: TextGenerator, problems: Sequence[records_pb2.Problem], *, k: int = 4,
             temperature: float = EVAL_TEMPERATURE, max_new_tokens: int = 64, seed: int = 0,
             checker: AnswerChecker | None = None) -> float:
    """Share of correct samples over len(problems) x k, sampled at `temperature` with the learner's prompt."""
    samples = held_out_samples(generator, problems, k=k, temperature=temperature, max_new_tokens=max_new_tokens,
                               seed=seed, checker=checker)
    return summary(samples, k)[f"avg@{k}"]


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
        if settings.eval_family.endswith(".jsonl"):  # the team's own held-out set
            problems = from_jsonl(Path(settings.eval_family))[: settings.eval_problems]
        else:
            problems = from_reasoning_gym(settings.eval_family, settings.eval_problems, seed=HELD_OUT_SEED,
                                          options=family_options(settings.eval_family))
        # Each problem its own id: the gate's paired bootstrap resamples problems (with one shared id it would
        # resample nothing and decide on the point estimate).
        for number, problem in enumerate(problems):
            problem.id = stable_id("held-out", str(number), problem.source, problem.question)
        return problems

    def generator(self, model: Path | str) -> TextGenerator:
        """What samples `model` (the base model, or a checkpoint's folder)."""
        return self._learners.load(str(model))

    def __call__(self, model: Path | str) -> dict[str, float]:
        return self.scores(self.judge(model))

    def scores(self, samples: Sequence[services_pb2.HeldOutSample]) -> dict[str, float]:
        """{"avg@k": ...} of samples `judge` drew, as a checkpoint records it ({} without a held-out set)."""
        key = f"avg@{self.settings.eval_k}"
        return {key: summary(samples, self.settings.eval_k)[key]} if samples else {}

    def judge(self, model: Path | str) -> list[services_pb2.HeldOutSample]:
        """Every judged sample of `model` on the trainer's own held-out problems (none when eval_problems is 0)."""
        if not self.problems:
            return []
        log.info("held-out avg@%d of %s on %s (%s)", self.settings.eval_k, model, self.settings.evaluator.backend,
                 self.settings.evaluator.device)
        return held_out_samples(self.generator(model), self.problems, k=self.settings.eval_k,
                                max_new_tokens=self.settings.eval_max_new_tokens)

    def evidence_key(self) -> dict[str, object]:
        """What makes two evaluations comparable sample by sample: the same problems, k, cap and sampling."""
        s = self.settings
        return {"eval_family": s.eval_family, "eval_problems": s.eval_problems, "eval_k": s.eval_k, "problem_ids": 1,
                "eval_max_new_tokens": s.eval_max_new_tokens, "temperature": EVAL_TEMPERATURE, "seed": 0}

    def samples(self, model: Path | str, problems: Sequence[records_pb2.Problem], k: int = 0,
                max_new_tokens: int = 0) -> list[services_pb2.HeldOutSample]:
        """Every judged sample of `model` on problems a caller chose (a study's held-out set)."""
        return held_out_samples(self.generator(model), problems, k=k or self.settings.eval_k,
                                max_new_tokens=max_new_tokens or self.settings.eval_max_new_tokens)
