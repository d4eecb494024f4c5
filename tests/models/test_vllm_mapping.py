"""The vLLM back end's GPU-free parts: request building and result mapping.

vLLM cannot run on these CPU machines, so its outputs are stood in for by objects
with the fields vLLM documents (RequestOutput.outputs / .prompt_logprobs,
CompletionOutput.text / .token_ids / .finish_reason, Logprob.logprob). The log-probs
fed through them come from a real forward pass, so the mapping is checked against
the transformers back end's own answer. tests/gpu/check_vllm.py runs the engine.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from learnerfit.domain.inference import SamplingParams
from learnerfit.models import vllm_backend
from learnerfit.models.chat import encode_reply
from learnerfit.models.settings import EngineSettings, OracleSettings
from learnerfit.models.transformers_backend import TransformersScorer

_IMPORT_ATTEMPTS = """
import sys
tried = []
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "vllm":
            tried.append(name)
            raise ImportError("vllm refused by the test")
sys.meta_path.insert(0, Refuse())
import learnerfit.models.vllm_backend, learnerfit.models.factory
print(tried)
"""


def test_importing_the_back_end_does_not_even_try_to_import_vllm():
    # Run where any attempt is seen and refused, so the check means the same with vLLM installed or not.
    out = subprocess.run([sys.executable, "-c", _IMPORT_ATTEMPTS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_sampling_and_scoring_requests():
    params = SamplingParams(n=8, temperature=0.7, top_p=0.95, max_new_tokens=128, seed=3)
    assert vllm_backend.sampling_kwargs(params) == {"n": 8, "temperature": 0.7, "top_p": 0.95, "max_tokens": 128,
                                                    "seed": 3}
    assert vllm_backend.scoring_kwargs() == {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 0}


def test_completions_map_text_length_and_truncation():
    output = SimpleNamespace(outputs=[
        SimpleNamespace(text=" 2 + 2 = 4\nFinal answer: 4", token_ids=[5, 6, 7], finish_reason="stop"),
        SimpleNamespace(text="2 + 2 = ", token_ids=[5, 6, 7, 8], finish_reason="length"),
    ])
    completions = vllm_backend.completions_from_output(output)
    assert [(c.text, c.token_count, c.truncated) for c in completions] == [
        ("2 + 2 = 4\nFinal answer: 4", 3, False), ("2 + 2 =", 4, True)]  # stripped, as transformers does


def test_prompt_logprobs_map_to_the_same_numbers_as_the_transformers_scorer(tiny_model):
    scorer = TransformersScorer(str(tiny_model))
    conversation = [{"role": "user", "content": "Calculate 3 + 4."}]
    solution = "3 + 4 = 7. Final answer: 7"
    prompt_ids, solution_ids = encode_reply(scorer.tokenizer, conversation, solution)
    ids = torch.tensor([prompt_ids + solution_ids])
    with torch.inference_mode():
        logprobs = torch.log_softmax(scorer.model(input_ids=ids).logits[0], dim=-1)
    # vLLM's shape: None for the first token, then {token id: Logprob} for the actual token (plus a top-1 rival).
    prompt_logprobs = [None] + [
        {token: SimpleNamespace(logprob=logprobs[pos - 1, token].item(), rank=2),
         int(logprobs[pos - 1].argmax()): SimpleNamespace(logprob=logprobs[pos - 1].max().item(), rank=1)}
        for pos, token in enumerate(ids[0].tolist()) if pos > 0
    ]
    mapped = vllm_backend.solution_logprobs(prompt_logprobs, len(prompt_ids), solution_ids,
                                            [scorer.tokenizer.decode([t]) for t in solution_ids])
    [expected] = scorer.score([conversation], [solution])
    assert mapped.token_ids == expected.token_ids and mapped.tokens == expected.tokens
    assert mapped.logprobs == pytest.approx(expected.logprobs, abs=1e-5)

    with pytest.raises(ValueError, match="prompt log-probs for"):
        vllm_backend.solution_logprobs(prompt_logprobs[:-1], len(prompt_ids), solution_ids, expected.tokens)
    broken = list(prompt_logprobs)
    broken[len(prompt_ids)] = {}
    with pytest.raises(ValueError, match="no log-prob for solution token 0"):
        vllm_backend.solution_logprobs(broken, len(prompt_ids), solution_ids, expected.tokens)


@pytest.mark.skipif("vllm" in sys.modules or __import__("importlib").util.find_spec("vllm") is not None,
                    reason="vLLM is installed here: the missing-package message cannot be seen")
def test_selecting_vllm_without_it_installed_says_how_to_get_it(tmp_path):
    from learnerfit.models.factory import make_text_generator

    with pytest.raises(RuntimeError, match=r"pip install 'learnerfit\[gpu\]'"):
        make_text_generator(EngineSettings(backend="vllm"), tmp_path)


def test_openai_back_end_cannot_score_logprobs(tmp_path):
    from learnerfit.models.factory import make_logprob_scorer

    with pytest.raises(ValueError, match="cannot score log-probs"):
        make_logprob_scorer(OracleSettings(backend="openai", model="gpt-x"), tmp_path)


def test_lora_adapters_get_one_stable_id_each(tmp_path):
    first, second = tmp_path / "ckpt-1", tmp_path / "ckpt-2"
    for adapter in (first, second):
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text("{}")
    ids = vllm_backend.AdapterIds()
    assert ids.fields(str(first)) == ("ckpt-1", 1, str(first.resolve()))
    assert ids.fields(str(second))[1] == 2
    assert ids.fields(str(first))[1] == 1  # the same adapter keeps its id (vLLM caches adapters by id)
    with pytest.raises(FileNotFoundError, match="not a LoRA adapter directory"):
        ids.fields(str(tmp_path))
