"""Sampling on the transformers back end: a sample's text depends on its prompt, index, seed and model only."""

from __future__ import annotations

import pytest

from learnerfit.domain.inference import SamplingParams
from learnerfit.models.transformers_backend import TransformersGenerator


@pytest.fixture(scope="module")
def generator(tiny_model):
    return TransformersGenerator(str(tiny_model), max_batch_sequences=64)


def _conversation(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Calculate {i} + {i * 7 % 5}. Show the steps." + " Please." * (i % 3)}]


def test_a_prompts_samples_are_the_same_alone_or_among_others(generator):
    params = SamplingParams(n=3, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=11)
    together = generator.generate([_conversation(i) for i in range(5)], params)
    alone = [generator.generate([_conversation(i)], params)[0] for i in (3, 0)]
    assert [c.text for c in alone[0]] == [c.text for c in together[3]]
    assert [c.text for c in alone[1]] == [c.text for c in together[0]]
    # In another order, and split across calls by a smaller batch: the same texts again.
    generator.max_batch_sequences = 4
    try:
        reordered = generator.generate([_conversation(i) for i in (4, 2, 0)], params)
    finally:
        generator.max_batch_sequences = 64
    assert [[c.text for c in s] for s in reordered] == [[c.text for c in together[i]] for i in (4, 2, 0)]


def test_samples_of_one_prompt_differ_by_index_and_by_seed(generator):
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=1)
    [samples] = generator.generate([_conversation(1)], params)
    assert len({c.text for c in samples}) > 1  # four draws, not one repeated
    [reseeded] = generator.generate([_conversation(1)], SamplingParams(n=4, temperature=1.0, max_new_tokens=12,
                                                                       seed=2))
    assert [c.text for c in reseeded] != [c.text for c in samples]
    [again] = generator.generate([_conversation(1)], params)
    assert [c.text for c in again] == [c.text for c in samples]


def test_temperature_zero_is_greedy_and_the_same_for_every_index(generator):
    [samples] = generator.generate([_conversation(2)], SamplingParams(n=2, temperature=0.0, max_new_tokens=8))
    assert samples[0].text == samples[1].text
