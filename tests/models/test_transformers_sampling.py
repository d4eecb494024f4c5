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


def test_temperature_zero_is_greedy_and_does_not_depend_on_the_seed(generator):
    [[first]] = generator.generate([_conversation(2)], SamplingParams(n=1, temperature=0.0, max_new_tokens=8, seed=1))
    [[second]] = generator.generate([_conversation(2)], SamplingParams(n=1, temperature=0.0, max_new_tokens=8, seed=9))
    assert first.text == second.text and first.token_count > 0


def test_several_greedy_samples_are_refused_by_name_on_every_back_end():
    """One rule, in the domain's SamplingParams that every back end takes, and in the request intake."""
    from learnerfit.domain.intake import IntakeLimits, SamplingDefaults, validate_sampling
    from learnerfit.errors import InvalidInput
    from learnerfit.v1 import records_pb2

    with pytest.raises(InvalidInput, match="n/temperature: 2 samples at temperature 0"):
        SamplingParams(n=2, temperature=0.0)
    spec = records_pb2.SamplingSpec(samples_per_problem=4, temperature=0.0, top_p=1.0, max_new_tokens=8)
    with pytest.raises(InvalidInput) as error:
        validate_sampling(spec, IntakeLimits(), "problems[0].sampling")
    assert error.value.field == "problems[0].sampling.samples_per_problem/problems[0].sampling.temperature"
    with pytest.raises(ValueError, match="temperature 0"):
        SamplingDefaults(temperature=0.0, samples_per_problem=4)
    assert SamplingParams(n=1, temperature=0.0).n == 1


def test_token_count_includes_the_end_of_sequence_token_as_vllm_counts_it(tiny_solver):
    """The tiny solver ends its one answer with EOS: counted (as vLLM's token_ids count it), not in the text."""
    solver = TransformersGenerator(str(tiny_solver))
    [[done]] = solver.generate([_conversation(1)], SamplingParams(n=1, temperature=0.0, max_new_tokens=40))
    assert not done.truncated and done.text.endswith("Final answer: 2")
    assert done.token_count == len(solver.tokenizer(done.text, add_special_tokens=False)["input_ids"]) + 1
    [[cut]] = solver.generate([_conversation(1)], SamplingParams(n=1, temperature=0.0, max_new_tokens=3))
    assert cut.truncated and cut.token_count == 3
