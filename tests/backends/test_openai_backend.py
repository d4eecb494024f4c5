"""The OpenAI-compatible back end against a local HTTP server that speaks the chat completions protocol.

The server is a test double for a hosted Oracle (no such model runs here); the
client under test is our real code over real sockets.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.backends.base import SamplingParams
from services.backends.openai_backend import OpenAIChatGenerator, OracleRequestError


class FakeOracle:
    """Answers each POST with the next scripted (status, body, headers, delay); then with a normal completion."""

    def __init__(self):
        self.script: list[tuple[int, dict, dict, float]] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.delay_s = 0.0
        self.lock = threading.Lock()
        oracle = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with oracle.lock:
                    oracle.requests.append(body)
                    oracle.headers.append(dict(self.headers))
                    oracle.in_flight += 1
                    oracle.max_in_flight = max(oracle.max_in_flight, oracle.in_flight)
                    status, reply, headers, delay = oracle.script.pop(0) if oracle.script else (
                        200, oracle.completion(body), {}, oracle.delay_s)
                try:
                    time.sleep(delay)
                    payload = json.dumps(reply).encode()
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left
                finally:
                    with oracle.lock:
                        oracle.in_flight -= 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def completion(body: dict) -> dict:
        question = body["messages"][-1]["content"]
        return {
            "choices": [{"index": i, "message": {"role": "assistant", "content": f"answer {i} to {question}"},
                         "finish_reason": "length" if i == 1 else "stop"} for i in range(body["n"])],
            "usage": {"prompt_tokens": 10, "completion_tokens": 6 * body["n"]},
        }


@pytest.fixture()
def oracle():
    server = FakeOracle()
    yield server
    server.server.shutdown()
    server.server.server_close()


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
                    "top_p": 0.9, "max_tokens": 77, "seed": 5}
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
    oracle.script = [(200, FakeOracle.completion({"messages": _conversation("q"), "n": 1}), {}, 1.0)]
    [[completion]] = _client(oracle, timeout_s=0.3, max_retries=1).generate([_conversation("q")], SamplingParams())
    assert completion.text == "answer 0 to q" and len(oracle.requests) == 2


def test_concurrency_is_bounded(oracle):
    oracle.delay_s = 0.2
    results = _client(oracle, max_concurrency=3).generate([_conversation(f"q{i}") for i in range(9)],
                                                          SamplingParams())
    assert [r[0].text for r in results] == [f"answer 0 to q{i}" for i in range(9)]  # order kept
    assert oracle.max_in_flight == 3


def test_wrong_number_of_choices_is_an_error(oracle):
    oracle.script = [(200, {"choices": []}, {}, 0.0)]
    with pytest.raises(OracleRequestError, match="asked for n=1 choices, got 0"):
        _client(oracle).generate([_conversation("q")], SamplingParams())
