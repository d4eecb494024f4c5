"""GPU check of the vLLM back end (run by hand on a CUDA machine with `pip install 'learnerfit[gpu]'`).

    python tests/gpu/check_vllm.py [--model smollm2-135m-instruct]

The CPU build of the same vLLM runs in `make test` (tests/models/test_vllm_engine.py); this is the GPU's check,
never run yet: no GPU machine with vLLM has been available to this work. It checks that the vLLM engine, built as
the generator's is (bfloat16, LoRA on), (1) samples n completions per prompt, (3) with --adapter (a registered LoRA
checkpoint of this model) applies it per request; and that an engine built as the drift scorer's is (LoRA off)
(2) scores solutions with the same log-probs as the transformers back end in float32 on the same GPU (bf16
differs, so the bound is loose: mean |delta| < 0.05 nats/token) and, with --adapter, scores the adapter merged
into full weights as PEFT applies it; and prints scoring throughput of both engines from one run.
"""

from __future__ import annotations

import argparse
import time

from learnerfit.domain.inference import SamplingParams
from learnerfit.domain.prompts import learner_conversation
from learnerfit.models.settings import SMOLLM2
from learnerfit.models.transformers_backend import TransformersScorer
from learnerfit.models.vllm_backend import VLLMEngine
from learnerfit.models.weights import merged_weights
from learnerfit.paths import default_cache_dir
from learnerfit.v1 import records_pb2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=SMOLLM2)
    parser.add_argument("--traces", type=int, default=256)
    parser.add_argument("--adapter", help="a LoRA checkpoint folder trained from --model (e.g. the registry's v1)")
    args = parser.parse_args()

    problems = [records_pb2.Problem(question=f"Calculate {i % 10} + {i % 7}.") for i in range(args.traces)]
    conversations = [learner_conversation(p) for p in problems]
    # Engines start one after another (the back end holds a machine-wide lock while one starts), each with its own
    # share. Sampling as the generator runs it (LoRA on); scoring as the drift scorer does (LoRA off: vLLM 0.32's
    # prompt log-probs under LoRA kill the engine or leave the adapter out).
    engine = VLLMEngine(args.model, dtype="bfloat16", gpu_memory_utilization=0.3, enable_lora=True)
    samples = engine.generate(conversations[:8], SamplingParams(n=4, temperature=0.7, max_new_tokens=64, seed=0))
    assert all(len(s) == 4 for s in samples), "n completions per prompt"
    print("sample:", samples[0][0].text.replace("\n", " | "))
    solutions = [s.text for group in engine.generate(conversations, SamplingParams(n=1, temperature=0.7,
                                                                                    max_new_tokens=96))
                 for s in group]
    if args.adapter:
        base = engine.generate(conversations[:4], SamplingParams(n=1, temperature=0.0, max_new_tokens=32))
        adapted = engine.with_adapter(args.adapter).generate(conversations[:4],
                                                              SamplingParams(n=1, temperature=0.0, max_new_tokens=32))
        print("adapter changes greedy text:", [a[0].text != b[0].text for a, b in zip(adapted, base, strict=True)])
    engine.release(replaced_by="the scoring check")

    scorer = VLLMEngine(args.model, dtype="bfloat16", gpu_memory_utilization=0.3)
    started = time.perf_counter()
    by_vllm = scorer.score(conversations, solutions)
    vllm_s = time.perf_counter() - started
    reference = TransformersScorer(args.model, device="cuda", dtype="float32")
    started = time.perf_counter()
    by_hf = reference.score(conversations, solutions)
    hf_s = time.perf_counter() - started
    deltas = [abs(a - b) for x, y in zip(by_vllm, by_hf, strict=True) for a, b in zip(x.logprobs, y.logprobs,
                                                                                       strict=True)]
    tokens = sum(len(x.logprobs) for x in by_hf)
    print(f"{len(solutions)} traces, {tokens} solution tokens; mean |delta logprob| {sum(deltas) / len(deltas):.4f}"
          f"; scoring tokens/s vllm {tokens / vllm_s:.0f}, transformers {tokens / hf_s:.0f}"
          f" (ratio {hf_s / vllm_s:.2f}x)")
    assert sum(deltas) / len(deltas) < 0.05
    if args.adapter:  # the drift scorer's way: the adapter merged into full weights, on an engine of its own
        scorer.release(replaced_by="the merged adapter")
        scorer = VLLMEngine(str(merged_weights(args.adapter, args.model, default_cache_dir())), dtype="bfloat16",
                            gpu_memory_utilization=0.3)
        adapted = scorer.score(conversations[:32], solutions[:32])
        by_adapter = TransformersScorer(args.adapter, device="cuda", dtype="float32").score(conversations[:32],
                                                                                            solutions[:32])
        gaps = [abs(a - b) for x, y in zip(adapted, by_adapter, strict=True)
                for a, b in zip(x.logprobs, y.logprobs, strict=True)]
        print(f"adapter {args.adapter}, merged: mean |delta logprob| vs transformers {sum(gaps) / len(gaps):.4f}")
        assert sum(gaps) / len(gaps) < 0.05
    scorer.release(replaced_by="the end of the check")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
