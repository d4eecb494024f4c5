"""Builds the back end a settings section names; engines are imported only when selected."""

from __future__ import annotations

import os
from pathlib import Path

from learnerfit.domain.inference import LogProbScorer, RewardModel, TextGenerator
from learnerfit.models.settings import EngineSettings, OracleSettings, RewardSettings


def make_text_generator(engine: EngineSettings, cache_dir: Path, model: str | None = None) -> TextGenerator:
    """A generator for `model` (default: the section's model), e.g. another learner checkpoint."""
    model = model or engine.model
    if engine.backend == "transformers":
        from learnerfit.models.transformers_backend import TransformersGenerator

        return TransformersGenerator(model, device=engine.device, dtype=engine.dtype,
                                     torch_threads=engine.torch_threads,
                                     max_batch_sequences=engine.max_batch_sequences,
                                     trust_remote_code=engine.trust_remote_code, cache_dir=cache_dir)
    if engine.backend == "vllm":
        return _vllm_engine(engine, model, cache_dir)
    if engine.backend == "openai" and isinstance(engine, OracleSettings):
        from learnerfit.models.openai_backend import OpenAIChatGenerator

        return OpenAIChatGenerator(engine.endpoint, model, api_key=os.environ.get(engine.api_key_env),
                                   timeout_s=engine.request_timeout_s, max_concurrency=engine.max_concurrency,
                                   max_retries=engine.max_retries)
    raise ValueError(f"unknown back end {engine.backend!r}")


def make_logprob_scorer(engine: EngineSettings, cache_dir: Path, model: str | None = None) -> LogProbScorer:
    """A scorer for `model` (default: the section's model), e.g. another learner checkpoint."""
    model = model or engine.model
    if engine.backend == "transformers":
        from learnerfit.models.transformers_backend import TransformersScorer

        return TransformersScorer(model, device=engine.device, dtype=engine.dtype, torch_threads=engine.torch_threads,
                                  max_batch_sequences=engine.max_batch_sequences,
                                  max_batch_tokens=engine.max_batch_tokens,
                                  trust_remote_code=engine.trust_remote_code, cache_dir=cache_dir)
    if engine.backend == "vllm":
        return _vllm_engine(engine, model, cache_dir)
    raise ValueError(f"back end {engine.backend!r} cannot score log-probs: use transformers or vllm")


def _vllm_engine(engine: EngineSettings, model: str, cache_dir: Path):
    from learnerfit.models.vllm_backend import VLLMEngine

    return VLLMEngine(model, dtype=engine.dtype, gpu_memory_utilization=engine.gpu_memory_utilization,
                      max_num_seqs=engine.max_batch_sequences, trust_remote_code=engine.trust_remote_code,
                      cache_dir=cache_dir)


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
