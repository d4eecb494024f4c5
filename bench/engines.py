"""The vLLM engine (its CPU build here) against the transformers back end, on the learner's two jobs.

Generation: the learner's real prompt, PROBLEMS easy problems x 4 samples, temperature 0.7, a 64-token cap, seed 0,
both engines warm (one untimed call first); useful tokens per second (kept tokens, EOS included). Scoring: the
log-probs of the first SCORED of those samples (solution tokens per second), vLLM with LoRA off (as a drift scorer
runs it: prompt log-probs over the whole prompt and vocabulary) against TransformersScorer (shared prefix once, the
LM head at solution positions only). Both
engines as the services build them on the CPU: vLLM float32 (eager) with its OpenMP threads on one core, transformers
float32 with one torch thread. Engine start-up is printed beside the table (vLLM's is tens of seconds, transformers' a few), since it
is paid again whenever a full checkpoint replaces the engine. Then the generation job under a LoRA adapter: a LoRA
request on vLLM against transformers with the adapter, and against vLLM's own base speed. BENCH_ENGINES_PROBLEMS and BENCH_ENGINES_SCORED shrink
it for a smoke run.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import Ratio, set_threads, timed
from learnerfit.domain.inference import SamplingParams
from learnerfit.domain.problems import EASY_ARITHMETIC, from_reasoning_gym
from learnerfit.domain.prompts import learner_conversation
from learnerfit.models.factory import make_text_generator
from learnerfit.models.settings import SMOLLM2, LearnerSettings
from learnerfit.models.transformers_backend import TransformersGenerator, TransformersScorer
from learnerfit.models.weights import resolve_model
from learnerfit.paths import default_cache_dir

PROBLEMS = int(os.environ.get("BENCH_ENGINES_PROBLEMS", "16"))
SCORED = int(os.environ.get("BENCH_ENGINES_SCORED", "16"))
PARAMS = SamplingParams(n=4, temperature=0.7, max_new_tokens=64, seed=0)


def _started(build):
    started = time.perf_counter()
    engine = build()
    return engine, time.perf_counter() - started


def run() -> list[Ratio]:
    set_threads()
    conversations = [learner_conversation(p) for p in from_reasoning_gym("basic_arithmetic", PROBLEMS, seed=0,
                                                                         options=EASY_ARITHMETIC)]
    hf_generator, hf_start = _started(lambda: TransformersGenerator(SMOLLM2, max_batch_sequences=64))
    hf_generator.generate(conversations[:1], PARAMS)
    # Built from the settings as a service builds it (float32 on the CPU: bfloat16 is emulated there).
    settings = LearnerSettings(backend="vllm", device="cpu", lora_adapters=False, cpu_cores="0")
    vllm, vllm_start = _started(lambda: make_text_generator(settings, default_cache_dir()))
    try:
        vllm.generate(conversations[:1], PARAMS)
        vllm.score(conversations[:1], ["1 + 1 = 2"])
        samples = []

        def generate(engine) -> int:
            samples[:] = [s for group in engine.generate(conversations, PARAMS) for s in group]
            return sum(s.token_count for s in samples)

        by_vllm = timed("vLLM CPU engine, generate", lambda: generate(vllm))
        by_hf = timed("transformers slot decoder, generate", lambda: generate(hf_generator))
        scored = [c for c in conversations for _ in range(PARAMS.n)][:SCORED], [s.text for s in samples][:SCORED]
        hf_scorer = TransformersScorer(SMOLLM2)

        def score(engine) -> int:
            return sum(len(x.logprobs) for x in engine.score(*scored))

        vllm_score = timed("vLLM CPU engine (LoRA off), score", lambda: score(vllm))
        hf_score = timed("transformers scorer, score", lambda: score(hf_scorer))
    finally:
        vllm.release(replaced_by="the end of the benchmark")
    by_vllm_lora, by_hf_lora = _under_an_adapter(settings, conversations, generate)
    print(f"engine start-up: vLLM {vllm_start:.1f} s, transformers {hf_start:.1f} s")
    return [Ratio("engines", by_vllm, by_hf, ""), Ratio("engines", vllm_score, hf_score, ""),
            Ratio("engines", by_vllm_lora, by_hf_lora, ""), Ratio("engines", by_vllm_lora, by_vllm, "")]


def _under_an_adapter(settings: LearnerSettings, conversations, generate):
    """The same generation job under a LoRA checkpoint as the trainer saves one (rank 16 on every linear layer, here
    with random weights): on vLLM a LoRA request on a LoRA-enabled engine (as the generator follows checkpoints), on
    transformers the adapter loaded with its base."""
    with tempfile.TemporaryDirectory(prefix="bench-adapter-") as scratch:
        adapter = _random_adapter(Path(scratch) / "v1")
        engine = make_text_generator(settings.model_copy(update={"lora_adapters": True, "max_lora_rank": 16}),
                                     default_cache_dir())
        try:
            adapted = engine.with_adapter(adapter)
            adapted.generate(conversations[:1], PARAMS)
            by_vllm = timed("vLLM CPU engine, generate, LoRA request", lambda: generate(adapted))
        finally:
            engine.release(replaced_by="the end of the benchmark")
        hf_adapted = TransformersGenerator(adapter, max_batch_sequences=64)
        hf_adapted.generate(conversations[:1], PARAMS)
        by_hf = timed("transformers slot decoder, generate, adapter", lambda: generate(hf_adapted))
    return by_vllm, by_hf


def _random_adapter(folder: Path) -> str:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve_model(SMOLLM2, default_cache_dir())
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False,
                                      task_type="CAUSAL_LM"))
    model.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return str(folder)
