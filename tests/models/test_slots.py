"""Continuous batching (models/slots.py): rows refilled into freed decode slots, their prompts' shared prefix run once,
sample exactly what each row would sample alone, with no cache, padding or neighbours; finished rows stop costing
decode steps."""

from __future__ import annotations

import torch

from learnerfit.domain.inference import SamplingParams
from learnerfit.models.slots import SlotDecoder, _sample
from learnerfit.models.transformers_backend import load_causal_lm


def _alone(model, prompt: list[int], seed: int, params: SamplingParams, eos: set[int]) -> list[int]:
    """The plainest correct decoding: the whole sequence through the model at every step, one row, no cache."""
    generator = torch.Generator().manual_seed(seed) if params.temperature > 0 else None
    ids, out = list(prompt), []
    with torch.inference_mode():
        while len(out) < params.max_new_tokens and not (out and out[-1] in eos):
            logits = model(input_ids=torch.tensor([ids])).logits[:, -1]
            token = int(_sample(logits, [generator] if generator else None, params.temperature, params.top_p)[0])
            ids.append(token)
            out.append(token)
    return out


def test_rows_through_three_refilled_slots_sample_what_each_samples_alone(tiny_solver):
    tokenizer, model = load_causal_lm(str(tiny_solver), device="cpu", dtype="float32", trust_remote_code=False)
    eos = {tokenizer.eos_token_id}
    # Prompts of different lengths (so caches are left-padded against each other when rows join) after a shared
    # preamble, each twice (two samples of a problem), and a temperature at which the one-answer solver sometimes
    # ends early and sometimes runs to the cap.
    preamble = "<|im_start|>system\nSolve the problem. Show each step, then the final answer.<|im_end|>\n"
    distinct = [tokenizer(f"{preamble}<|im_start|>user\nWhat is {i} + {i}?{' Please.' * (i % 4)}<|im_end|>\n"
                          "<|im_start|>assistant\n")["input_ids"] for i in range(6)]
    prompts = [prompt for prompt in distinct for _ in range(2)]
    seeds = [1000 + i for i in range(12)]
    params = SamplingParams(n=1, temperature=1.3, top_p=0.95, max_new_tokens=24, seed=0)
    decoder = SlotDecoder(model, eos_ids=eos, pad_id=tokenizer.pad_token_id, slots=3, refill_at=1)

    together = decoder.decode(prompts, seeds, params)

    alone = [_alone(model, p, s, params, eos) for p, s in zip(prompts, seeds, strict=True)]
    assert together == alone
    lengths = [len(o) for o in together]
    assert len(set(lengths)) > 3 and min(lengths) < params.max_new_tokens == max(lengths), lengths
    assert decoder.stats.kept_tokens == sum(lengths)
    # The preamble ran once and each problem's prompt once for its two samples.
    assert decoder.stats.prefill_tokens < sum(len(p) for p in distinct)
    # Padded in groups of three, each group would run as long as its longest row; refilling a slot as soon as its
    # row ends needs fewer decode passes (prefills included).
    padded_passes = sum(max(lengths[i:i + 3]) for i in range(0, 12, 3))
    assert decoder.stats.forward_passes < padded_passes, (decoder.stats, padded_passes)


def test_greedy_rows_match_transformers_generate(tiny_solver):
    tokenizer, model = load_causal_lm(str(tiny_solver), device="cpu", dtype="float32", trust_remote_code=False)
    prompts = [tokenizer(f"<|im_start|>user\nCalculate {i} * 3.{' Now.' * i}<|im_end|>\n<|im_start|>assistant\n")
               ["input_ids"] for i in range(5)]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=16)
    decoder = SlotDecoder(model, eos_ids=[tokenizer.eos_token_id], pad_id=tokenizer.pad_token_id, slots=2)
    ours = decoder.decode(prompts, [0] * 5, params)
    for prompt, row in zip(prompts, ours, strict=True):
        with torch.inference_mode():
            reference = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=16,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        assert row == reference[0, len(prompt):].tolist()
