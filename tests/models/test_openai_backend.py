"""The OpenAI-compatible back end against a local HTTP server that speaks the chat completions protocol.

The server is a test double for a hosted Oracle (no such model runs here); the
client under test is our real code over real sockets.
"""

from __future__ import annotations

import time

import pytest

from learnerfit.domain.inference import SamplingParams
from learnerfit.models.openai_backend import OpenAIChatGenerator, OracleRequestError, retry_after_s, split_usage
from tests.fake_oracle import FakeOracle


@pytest.fixture()
def oracle():
    server = FakeOracle()
    yield server
    server.close()


def _client(oracle, **kwargs) -> OpenAIChatGenerator:
    kwargs = {"api_key": "sk-test", "backoff_s": 0.01, **kwargs}
    return OpenAIChatGenerator(oracle.endpoint, "oracle-model", **kwargs)


def _conversation(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be exact."}, {"role": "user", "content": text}]


def test_n_completions_per_conversation_with_the_request_as_specified(oracle):
    client = _client(oracle)
    params = SamplingParams(n=2, temperature=0.3, top_p=0.9, max_new_tokens=77, seed=5)
    results = client.generate([_conversation("q1"), _conversation("q2")], params)
    assert [[c.text for c in r] for r in results] == [["answer 0 to q1", "answer 1 to q1"],
                                                      ["answer 0 to q2", "answer 1 to q2"]]
    assert [c.truncated for c in results[0]] == [False, True] and results[0][0].token_count == 6
    body = sorted(oracle.requests, key=lambda b: b["messages"][-1]["content"])[0]
    assert body == {"model": "oracle-model", "messages": _conversation("q1"), "n": 2, "temperature": 0.3,
                    "top_p": 0.9, "max_completion_tokens": 77, "seed": 5}  # newer hosted models refuse max_tokens
    assert oracle.headers[0]["Authorization"] == "Bearer sk-test"


def test_retries_rate_limits_and_server_errors_then_succeeds(oracle):
    oracle.script = [(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}, 0.0),
                     (503, {"error": {"message": "overloaded"}}, {}, 0.0),
                     (500, {}, {}, 0.0)]
    [[completion]] = _client(oracle, max_retries=3).generate([_conversation("q")], SamplingParams())
    assert completion.text == "answer 0 to q"
    assert len(oracle.requests) == 4


def test_client_error_fails_at_once_with_the_servers_message(oracle):
    oracle.script = [(400, {"error": {"message": "max_tokens is too large: 99999"}}, {}, 0.0)]
    with pytest.raises(OracleRequestError, match="answered 400: max_tokens is too large") as error:
        _client(oracle).generate([_conversation("q")], SamplingParams())
    assert error.value.status == 400
    assert len(oracle.requests) == 1  # a bad request is not retried


def test_gives_up_after_the_retry_budget(oracle):
    oracle.script = [(502, {"error": {"message": "bad gateway"}}, {}, 0.0)] * 3
    with pytest.raises(OracleRequestError, match="failed after 3 attempts; last: 502: bad gateway"):
        _client(oracle, max_retries=2).generate([_conversation("q")], SamplingParams())


def test_a_slow_answer_times_out_and_is_retried(oracle):
    oracle.script = [(200, oracle.completion({"messages": _conversation("q"), "n": 1}), {}, 1.0)]
    [[completion]] = _client(oracle, timeout_s=0.3, max_retries=1).generate([_conversation("q")], SamplingParams())
    assert completion.text == "answer 0 to q" and len(oracle.requests) == 2


def test_concurrency_is_bounded(oracle):
    # Each request is held until three are in flight together: a client that allowed more would be seen above
    # three, one that sent fewer at once would stall at the gate and be seen below.
    oracle.gate = 3
    results = _client(oracle, max_concurrency=3).generate([_conversation(f"q{i}") for i in range(9)],
                                                          SamplingParams())
    assert [r[0].text for r in results] == [f"answer 0 to q{i}" for i in range(9)]  # order kept
    assert oracle.max_in_flight == 3


def test_wrong_number_of_choices_is_an_error(oracle):
    oracle.script = [(200, {"choices": []}, {}, 0.0)]
    with pytest.raises(OracleRequestError, match="asked for n=1 choices, got 0"):
        _client(oracle).generate([_conversation("q")], SamplingParams())


def test_a_reply_prefix_is_continued_the_way_vllm_serve_does_it(oracle):
    oracle.responder = lambda body, i: (" = 4\nFinal answer: 4", "stop")
    prefix = "Step 1: 2 + 2"
    [[completion]] = _client(oracle, continues_prefix=True).generate([_conversation("q")], SamplingParams(),
                                                                     prefixes=[prefix])
    assert completion.text == "Step 1: 2 + 2 = 4\nFinal answer: 4"  # the whole reply, as every back end gives it
    [body] = oracle.requests
    assert body["messages"] == [*_conversation("q"), {"role": "assistant", "content": prefix}]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    with pytest.raises(NotImplementedError, match="continues_prefix"):
        _client(oracle).generate([_conversation("q")], SamplingParams(), prefixes=[prefix])  # a hosted API: refused


def test_retry_after_in_seconds_http_date_and_milliseconds():
    now = 1_800_000_000.0
    assert retry_after_s({"Retry-After": "7"}) == 7.0
    assert retry_after_s({"Retry-After": email_date(now + 12)}, now=now) == pytest.approx(12.0)
    assert retry_after_s({"Retry-After": email_date(now - 5)}, now=now) == 0.0  # a date already past: no wait
    assert retry_after_s({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25  # the finer one wins
    assert retry_after_s({"Retry-After": "soon"}) is None and retry_after_s({}) is None


def email_date(timestamp: float) -> str:
    import email.utils

    return email.utils.formatdate(timestamp, usegmt=True)


def test_a_servers_long_retry_after_is_capped(oracle):
    oracle.script = [(429, {"error": {"message": "slow down"}}, {"Retry-After": "3600"}, 0.0)]
    client = _client(oracle, max_retries=1, max_retry_after_s=0.2)
    started = time.monotonic()
    [[completion]] = client.generate([_conversation("q")], SamplingParams())
    assert completion.text == "answer 0 to q" and time.monotonic() - started < 5  # waited 0.2 s, not an hour


def test_a_replys_usage_shared_over_its_choices_adds_up_to_what_the_request_took():
    shares = split_usage({"prompt_tokens": 101, "completion_tokens": 7,
                          "prompt_tokens_details": {"cached_tokens": 5}}, 3)
    assert [s.prompt_tokens for s in shares] == [34, 34, 33]
    assert sum(s.completion_tokens for s in shares) == 7 and sum(s.cached_tokens for s in shares) == 5
    assert [s.requests for s in shares] == [1, 0, 0] and not any(s.counted for s in shares)
    assert split_usage(None, 2) == [None, None] and split_usage({}, 1) == [None]
