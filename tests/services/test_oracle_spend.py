"""Oracle spend through the refiner, over real gRPC and through the stream, against the OpenAI-protocol stand-in (a
hosted Oracle cannot run here; a real `vllm serve` reporting usage is in tests/models/test_openai_vllm_server.py):
usage read from each reply, or counted where the endpoint sends none; the price table applied; a batch's budget
reached mid-batch; an output asked for again not paid for twice (one already on the topics when a killed refiner
replays its inputs: tests/faults/test_oracle_kill.py)."""

from __future__ import annotations

import math

import pytest

from learnerfit.domain import topics
from learnerfit.domain.batches import BatchLedger
from learnerfit.v1 import records_pb2, services_pb2
from services.refiner import SPEC
from tests.fake_oracle import FakeOracle
from tests.kafka_helpers import read_topic
from tests.running import own_group, running

PRICE = {"input_per_million": 2.0, "output_per_million": 8.0, "cached_input_per_million": 0.5}


def _solve(body, _index):
    question = body["messages"][-1]["content"]
    a, b = (int(n) for n in question.split("Calculate ", 1)[1].split(".")[0].split(" + "))
    return f"{a} + {b} = {a + b}\nFinal answer: {a + b}", "stop"


@pytest.fixture
def oracle():
    server = FakeOracle(_solve)
    yield server
    server.close()


def _settings(oracle, **more) -> dict:
    return {"backend": "openai", "model": "oracle-model", "endpoint": oracle.endpoint, "max_retries": 0, **more}


def _sample(a: int, b: int, batch: str, budget: records_pb2.OracleBudget | None = None) -> records_pb2.Trajectory:
    problem = records_pb2.Problem(id=f"p-{batch}-{a}-{b}", batch_id=batch, question=f"Calculate {a} + {b}.",
                                  reference_answer=str(a + b), sampling=records_pb2.SamplingSpec(samples_per_problem=1),
                                  oracle_modes=[records_pb2.ORACLE_MODE_REFINE], batch_problems=6,
                                  oracle_budget=budget)
    return records_pb2.Trajectory(id=f"t-{batch}-{a}-{b}", problem=problem, origin=records_pb2.ORIGIN_LEARNER_SAMPLE,
                                  text=f"{a} + {b} = {a + b}\nFinal answer: {a + b}",
                                  scores=records_pb2.Scores(verdict=records_pb2.VERDICT_CORRECT))


def _refine(stub, trace) -> records_pb2.Trajectory:
    [output] = stub.Refine(services_pb2.RefineRequest(trajectories=[trace], mode=records_pb2.ORACLE_MODE_REFINE),
                           timeout=60).trajectories
    return output


def test_usage_is_read_from_each_reply_priced_as_computed_by_hand_and_counted_where_none_is_reported(oracle, broker):
    oracle.usage = lambda body: {"prompt_tokens": 1200, "completion_tokens": 300,
                                 "prompt_tokens_details": {"cached_tokens": 200}}
    with running(SPEC, broker, loops=False, oracle=_settings(oracle, prices={"oracle-model": PRICE})) as (_, stub, _):
        reported = _refine(stub, _sample(2, 3, "b-usage"))
        oracle.usage = None  # a server that reports no usage
        estimated = _refine(stub, _sample(4, 4, "b-usage"))
    usage = reported.oracle_usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.requests, usage.source) == (
        1200, 300, 200, 1, records_pb2.USAGE_SOURCE_REPORTED)
    # 1000 uncached prompt tokens at $2, 200 cached at $0.50, 300 completion tokens at $8, per million
    assert usage.cost_usd == pytest.approx(0.0045)
    prompt_chars = sum(len(m["content"]) for m in oracle.requests[-1]["messages"])
    usage = estimated.oracle_usage
    assert usage.source == records_pb2.USAGE_SOURCE_ESTIMATED
    assert (usage.prompt_tokens, usage.completion_tokens) == (math.ceil(prompt_chars / 4),
                                                              math.ceil(len(estimated.text) / 4))
    assert usage.cost_usd == pytest.approx((usage.prompt_tokens * 2 + usage.completion_tokens * 8) / 1e6)


def test_where_the_endpoint_reports_none_the_tokenizer_given_counts_them(oracle, broker, tiny_model):
    from transformers import AutoTokenizer

    oracle.usage = None
    with running(SPEC, broker, loops=False, oracle=_settings(oracle, tokenizer=str(tiny_model))) as (_, stub, _):
        output = _refine(stub, _sample(2, 3, "b-counted"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompt = tokenizer.apply_chat_template(oracle.requests[-1]["messages"], add_generation_prompt=True, tokenize=False)
    usage = output.oracle_usage
    assert usage.source == records_pb2.USAGE_SOURCE_COUNTED and not usage.HasField("cost_usd")  # no price given
    assert usage.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False).input_ids)
    assert usage.completion_tokens == len(tokenizer(output.text, add_special_tokens=False).input_ids) > 0


def test_a_budget_reached_mid_batch_stops_oracle_requests_and_the_rest_are_refused_by_name(oracle, broker):
    """6 outputs wanted, 16 tokens each (the stand-in's usage), a cap of 40 tokens, all 6 inputs in one micro-batch:
    asked one at a time as the budget's rest covers, while the batch had spent 0, 16 and 32 tokens; the other 3
    never asked, rejected as budget_exhausted, so the batch still completes."""
    budget = records_pb2.OracleBudget(max_tokens=40)
    samples = [_sample(i, 1, "b-budget", budget) for i in range(6)]
    stage = {"max_batch": 8, "max_wait_s": 2, "group": own_group("refiner")}
    with running(SPEC, broker, oracle=_settings(oracle), stage=stage) as (_, _s, bus):
        bus.publish((topics.SCORED, s) for s in samples)
        answered = [records_pb2.Trajectory.FromString(r.value)
                    for r in read_topic(bus, topics.TRAJECTORIES, at_least=3, timeout_s=60)]
        refused = [records_pb2.Trajectory.FromString(r.value)
                   for r in read_topic(bus, topics.ORACLE_REJECTED, at_least=3, timeout_s=60)]
    assert len(oracle.requests) == len(answered) == 3  # nothing asked once the cap was reached
    assert sum(t.oracle_usage.prompt_tokens + t.oracle_usage.completion_tokens for t in answered) == 48
    assert [t.rejection.guardrail for t in refused] == ["budget_exhausted"] * 3
    assert refused[0].rejection.detail == "the batch's Oracle work has taken 48 tokens of its budget of 40"
    assert all(t.oracle_usage.source == records_pb2.USAGE_SOURCE_NONE for t in refused)
    # What the gateway makes of it: the spend is exactly the answered outputs', the refusals counted apart.
    ledger = BatchLedger()
    for record in [s.problem for s in samples] + answered + refused:
        ledger.apply(record)
    status = ledger.status("b-budget")
    [spend] = status.oracle_spend
    assert (spend.outputs, spend.refused, spend.prompt_tokens, spend.completion_tokens) == (3, 3, 30, 18)
    assert status.oracle_budget_exhausted and status.oracle_budget.max_tokens == 40
    assert not spend.HasField("cost_usd")  # no price given: tokens only


def test_a_cost_cap_without_a_price_for_the_model_asks_nothing(oracle, broker):
    with running(SPEC, broker, loops=False, oracle=_settings(oracle)) as (_, stub, _):
        output = _refine(stub, _sample(2, 3, "b-unpriced", records_pb2.OracleBudget(max_cost_usd=1.0)))
    assert oracle.requests == []
    assert output.rejection.guardrail == "budget_exhausted" and "has no price" in output.rejection.detail


def test_an_output_asked_for_again_is_given_as_it_was_not_bought_twice(oracle, broker):
    """What a stage retrying a batch whose publish failed does, or a client repeating a call: the Oracle is asked
    once, and the same output, with what it cost, comes back."""
    trace = _sample(6, 3, "b-again")
    with running(SPEC, broker, loops=False, oracle=_settings(oracle)) as (_, stub, _):
        first, again = _refine(stub, trace), _refine(stub, trace)
    assert len(oracle.requests) == 1 and first == again and first.oracle_usage.prompt_tokens == 10
