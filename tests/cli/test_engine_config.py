"""`--engine vllm`: every model service on vLLM, on one shared GPU (or the learner's two on the CPU build), with
settings each service accepts."""

from __future__ import annotations

import pytest

from learnerfit.cli import stack
from learnerfit.cli import build_parser
from learnerfit.cli.stack import ENGINES_GPU_SHARE, stack_config
from services.drift_scorer import DriftScorerSettings
from services.generator import GeneratorSettings
from services.refiner import RefinerSettings
from services.style_aligner import StyleAlignerSettings

SETTINGS = {"generator": GeneratorSettings, "drift_scorer": DriftScorerSettings, "refiner": RefinerSettings,
            "style_aligner": StyleAlignerSettings}


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(stack, "cuda_present", lambda: True)


def _engines(argv):
    config = stack_config(build_parser().parse_args(argv))
    settings = {name: cls(**config[name]) for name, cls in SETTINGS.items()}
    return [getattr(settings[service], section) for service, section in (
        ("generator", "learner"), ("drift_scorer", "learner"), ("refiner", "oracle"), ("style_aligner", "oracle"),
        ("style_aligner", "learner")) if getattr(settings[service], section).backend not in ("openai", "teacher")]


def test_every_engine_on_vllm_shares_one_gpu_within_its_part(gpu):
    engines = _engines(["run", "--engine", "vllm", "--oracle-model", "smollm2-135m-instruct"])
    assert len(engines) == 5 and {e.backend for e in engines} == {"vllm"}
    assert sum(e.gpu_memory_utilization for e in engines) <= ENGINES_GPU_SHARE + 1e-9
    assert {e.resolved_dtype() for e in engines} == {"bfloat16"}  # LoRA-capable (the learner follows adapters)


def test_an_oracle_without_a_model_here_takes_no_share_and_the_default_stays_on_transformers(gpu):
    for oracle in (["--oracle-endpoint", "https://api.example/v1"], []):  # a hosted model; the rule-based teacher
        engines = _engines(["run", "--engine", "vllm", *oracle])
        assert len(engines) == 3 and engines[0].gpu_memory_utilization == round(ENGINES_GPU_SHARE / 3, 3)
    config = stack_config(build_parser().parse_args(["run", "--engine", "vllm"]))
    assert config["refiner"]["oracle"] == {"backend": "teacher", "teacher_register": "mixed"}
    assert {e.backend for e in _engines(["run"])} == {"transformers"}


def test_the_drift_scorer_runs_vllm_with_lora_off_since_vllm_scores_wrongly_under_lora(gpu):
    config = stack_config(build_parser().parse_args(["run", "--engine", "vllm"]))
    assert DriftScorerSettings(**config["drift_scorer"]).learner.lora_adapters is False
    assert GeneratorSettings(**config["generator"]).learner.lora_adapters is True  # adapters per request


def test_without_cuda_the_generator_runs_the_cpu_build_and_scoring_stays_on_transformers(monkeypatch):
    monkeypatch.setattr(stack, "cuda_present", lambda: False)
    engines = _engines(["run", "--engine", "vllm"])
    assert [(e.backend, e.device) for e in engines] == [("vllm", "cpu"), ("transformers", "cpu"),
                                                        ("transformers", "cpu")]  # generator, drift, style aligner
    # float32, and LoRA off: adapters merged, an engine per checkpoint (LoRA requests are slow on the CPU build)
    assert engines[0].resolved_dtype() == "float32" and not engines[0].lora_adapters


def test_on_a_gpu_the_trainer_evaluates_on_it_and_on_the_cpu_it_stays_on_transformers(monkeypatch):
    from services.trainer import TrainerSettings

    for cuda, device in ((True, "cuda"), (False, "cpu")):
        monkeypatch.setattr(stack, "cuda_present", lambda cuda=cuda: cuda)
        config = stack_config(build_parser().parse_args(["run", "--engine", "vllm"]))
        evaluator = TrainerSettings(**config["trainer"]).train.evaluator
        assert (evaluator.backend, evaluator.device) == ("transformers", device)

