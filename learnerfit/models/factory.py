"""Builds the back end a settings section names; engines are imported only when selected."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from learnerfit.domain.inference import LogProbScorer, RewardModel, TextGenerator
from learnerfit.domain.answers import AnswerCheck
from learnerfit.domain.oracle.tasks import Oracle
from learnerfit.domain.oracle.writer import OracleWriter, OutcomeSink
from learnerfit.errors import FailedPrecondition, InvalidInput
from learnerfit.models.settings import EngineSettings, OracleSettings, RewardSettings
from learnerfit.models.weights import merged_weights


def make_text_generator(engine: EngineSettings, cache_dir: Path, model: str | None = None,
                        admit: Callable[[int, int], None] | None = None) -> TextGenerator:
    """A generator for `model` (default: the section's model), e.g. another learner checkpoint. `admit`: a rate
    limit the openai back end waits on before each request."""
    model = model or engine.model
    if engine.backend == "transformers":
        from learnerfit.models.transformers_backend import TransformersGenerator

        return TransformersGenerator(model, device=engine.device, dtype=engine.resolved_dtype(),
                                     torch_threads=engine.torch_threads,
                                     max_batch_sequences=engine.max_batch_sequences,
                                     trust_remote_code=engine.trust_remote_code, cache_dir=cache_dir)
    if engine.backend == "vllm":
        return _vllm_engine(engine, model, cache_dir)
    if engine.backend == "openai" and isinstance(engine, OracleSettings):
        from learnerfit.models.openai_backend import OpenAIChatGenerator

        return OpenAIChatGenerator(engine.endpoint, model, api_key=engine.api_key(),
                                   timeout_s=engine.request_timeout_s, max_concurrency=engine.max_concurrency,
                                   max_retries=engine.max_retries, max_retry_after_s=engine.max_retry_after_s,
                                   continues_prefix=engine.continues_prefix, admit=admit)
    raise ValueError(f"unknown back end {engine.backend!r}")


def make_oracle(settings: OracleSettings, cache_dir: Path, admit: Callable[[int, int], None] | None = None) -> Oracle:
    """The Oracle an Oracle service asks by task: the rule-based teacher, or an LLM prompted per task."""
    if settings.backend == "teacher":
        from learnerfit.domain.oracle.teacher import RuleTeacher

        return RuleTeacher(settings.teacher_register)
    from learnerfit.domain.oracle.prompted import PromptedOracle
    from learnerfit.models.tokens import token_counter

    return PromptedOracle(make_text_generator(settings, cache_dir, admit=admit), settings.sampling(),
                          token_counter(settings, cache_dir))


def make_oracle_writer(settings: OracleSettings, checker: AnswerCheck, min_overlap: float, cache_dir: Path,
                       outcomes: OutcomeSink, admit: Callable[[int, int], None] | None = None) -> OracleWriter:
    """The Oracle behind an Oracle service, with what it costs (the model's price, where one is set) and the rate
    limit it waits on (`admit`, shared by the service's replicas)."""
    return OracleWriter(make_oracle(settings, cache_dir, admit), checker, min_overlap, outcomes=outcomes,
                        price=settings.price())


def make_logprob_scorer(engine: EngineSettings, cache_dir: Path, model: str | None = None) -> LogProbScorer:
    """A scorer for `model` (default: the section's model), e.g. another learner checkpoint."""
    model = model or engine.model
    if engine.backend == "transformers":
        from learnerfit.models.transformers_backend import TransformersScorer

        return TransformersScorer(model, device=engine.device, dtype=engine.resolved_dtype(),
                                  torch_threads=engine.torch_threads,
                                  max_batch_sequences=engine.max_batch_sequences,
                                  max_batch_tokens=engine.max_batch_tokens,
                                  trust_remote_code=engine.trust_remote_code, cache_dir=cache_dir)
    if engine.backend == "vllm":
        check_vllm_scoring(engine)
        return _vllm_engine(engine, model, cache_dir)
    raise ValueError(f"back end {engine.backend!r} cannot score log-probs: use transformers or vllm")


def check_vllm_scoring(engine: EngineSettings) -> None:
    """Prompt log-probs on a vLLM engine with LoRA on are wrong or fatal in vLLM 0.32 (the engine dies on its first
    batch: vLLM issues #16668 and #29955; #51594: an adapter's lm_head delta is left out), so a scorer refuses it
    at start-up. With lora_adapters off an adapter checkpoint is merged into full weights and gets an engine."""
    if engine.lora_adapters:
        raise InvalidInput("lora_adapters", "a vLLM engine that scores log-probs must run with LoRA off "
                                            "(lora_adapters: false): vLLM 0.32's prompt log-probs under LoRA kill "
                                            "the engine or leave the adapter out (vLLM issues #16668, #29955, "
                                            "#51594); adapter checkpoints are then merged and served whole")


def _vllm_engine(engine: EngineSettings, model: str, cache_dir: Path):
    from learnerfit.models.vllm_backend import VLLMEngine

    return VLLMEngine(model, device=engine.device, dtype=engine.resolved_dtype(),
                      gpu_memory_utilization=engine.gpu_memory_utilization,
                      kv_cache_memory_bytes=engine.kv_cache_memory_bytes, max_num_seqs=engine.max_batch_sequences,
                      max_model_len=engine.max_model_len, enable_lora=engine.lora_adapters,
                      max_lora_rank=engine.max_lora_rank, max_loras=engine.max_loras,
                      max_cpu_loras=engine.max_cpu_loras, cpu_cores=engine.cpu_cores,
                      trust_remote_code=engine.trust_remote_code, cache_dir=cache_dir)


def make_reward_model(reward: RewardSettings, cache_dir: Path) -> RewardModel | None:
    if reward.backend == "none":
        return None
    if reward.backend == "transformers":
        from learnerfit.models.reward import TransformersRewardModel

        return TransformersRewardModel(reward.model, device=reward.device,
                                       max_batch_sequences=reward.max_batch_sequences, max_length=reward.max_length,
                                       cache_dir=cache_dir)
    from learnerfit.models.triton_backend import TritonRewardModel

    return TritonRewardModel(reward.triton_url, reward.triton_model, model_name=reward.model, tokenizer=reward.model,
                             max_batch_sequences=reward.max_batch_sequences, max_length=reward.max_length,
                             timeout_s=reward.triton_timeout_s, cache_dir=cache_dir)


Model = TypeVar("Model", TextGenerator, LogProbScorer)


def is_adapter(model: str) -> bool:
    return (Path(model) / "adapter_config.json").is_file()


class LearnerModels(Generic[Model]):
    """How a learner service gets its base model and each checkpoint it follows, engine by engine.

    transformers: every checkpoint is a model of its own (an adapter folder loads with
    its base), kept as FollowedLearner's LRU says.
    vllm: one engine per process. The trainer registers every adapter against the base
    model (trainer/sft.py), so an adapter checkpoint is a LoRA request on the base
    engine: switching costs nothing and any number are served. With LoRA off (a
    scorer: vLLM's prompt log-probs are wrong under LoRA) an adapter is merged into
    full weights once and served as a full checkpoint. A full checkpoint
    replaces the engine, the old one released first (a second would not fit in the
    GPU memory share); so only the model the engine holds is served, and a request
    naming a checkpoint that needs another engine fails with FAILED_PRECONDITION.
    """

    def __init__(self, engine: EngineSettings, cache_dir: Path, make: Callable[[EngineSettings, Path, str], Model]):
        self.engine, self.cache_dir, self._make = engine, cache_dir, make
        self._lock = threading.Lock()
        self._held: tuple[str, Model] | None = None  # vllm: (model the engine holds, engine)

    def load(self, model: str) -> Model:
        """The learner switches to `model` (its base at start, then each checkpoint it follows)."""
        if self.engine.backend != "vllm":
            return self._make(self.engine, self.cache_dir, model)
        model = self._servable(model)
        with self._lock:
            engine = self._engine_holding(self.engine.model if is_adapter(model) else model)
            return engine.with_adapter(model) if is_adapter(model) else engine

    def load_other(self, model: str) -> Model:
        """A checkpoint a request names, beside the current one."""
        if self.engine.backend == "vllm":
            model = self._servable(model)
            needs = self.engine.model if is_adapter(model) else model
            with self._lock:
                if self._held is not None and self._held[0] != needs:
                    raise FailedPrecondition(f"checkpoint {model} needs the vLLM engine to hold {needs}, and it holds "
                                             f"{self._held[0]} (the current learner): one engine per process")
        return self.load(model)

    def _servable(self, model: str) -> str:
        """What the vLLM engine loads for `model`: an adapter with LoRA off is merged into full weights (once)."""
        if is_adapter(model) and not self.engine.lora_adapters:
            return str(merged_weights(model, self.engine.model, self.cache_dir))
        return model

    def _engine_holding(self, model: str) -> Model:
        if self._held is not None and self._held[0] == model:
            return self._held[1]
        if self._held is not None:
            self._held[1].release(replaced_by=model)  # type: ignore[union-attr]
        self._held = (model, self._make(self.engine, self.cache_dir, model))
        return self._held[1]
