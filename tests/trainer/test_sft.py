"""The trainer's SFT path on a tiny learner: trains, evaluates Avg@k, registers the model that was trained; killed
mid-training, registers nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from learnerfit.domain.prompts import training_messages
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.v1 import records_pb2
from trainer.sft import load_examples, sft_rows


def _export(path, count=4):
    """Curated examples as `learnerfit export` writes them."""
    with open(path, "w") as out:
        for i in range(count):
            problem = records_pb2.Problem(question=f"Calculate {i} + 1.")
            messages = [{"role": m.role, "content": m.content}
                        for m in training_messages(problem, f"{i} + 1 = {i + 1}\nFinal answer: {i + 1}")]
            out.write(json.dumps({"id": f"example-{i}", "policy": "utility", "messages": messages}) + "\n")
    return path


def _trainer(tmp_path, tiny_model, *extra):
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "trainer.sft", str(_export(tmp_path / "curated.jsonl")),
                             "--base-model", str(tiny_model), "--registry", str(tmp_path / "registry"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_examples_become_prompt_completion_rows_with_the_solution_as_completion(tmp_path):
    [example] = load_examples(_export(tmp_path / "one.jsonl", count=1))
    [row] = sft_rows([example])
    assert row["completion"] == [{"role": "assistant", "content": "0 + 1 = 1\nFinal answer: 1"}]
    assert row["prompt"][-1] == {"role": "user", "content": "Calculate 0 + 1."}


def test_training_registers_an_evaluated_adapter(tmp_path, tiny_model):
    process = _trainer(tmp_path, tiny_model, "--eval-problems", "2", "--eval-k", "2")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    [checkpoint] = CheckpointRegistry(tmp_path / "registry").list()
    assert checkpoint.version == "v1" and checkpoint.kind == records_pb2.CHECKPOINT_KIND_ADAPTER
    assert list(checkpoint.example_ids) == [f"example-{i}" for i in range(4)] and checkpoint.policy == "utility"
    assert set(checkpoint.eval) == {"avg@2"} and 0 <= checkpoint.eval["avg@2"] <= 1
    files = {p.name for p in (tmp_path / "registry" / checkpoint.path).iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "train_metrics.json"} <= files
    assert f"registered v1 at {tmp_path / 'registry' / 'checkpoints' / 'v1'}" in output


def test_a_trainer_killed_mid_training_leaves_the_registry_unchanged(tmp_path, tiny_model):
    registry = CheckpointRegistry(tmp_path / "registry")
    # A real earlier checkpoint (the base model's own weights, as a full checkpoint), which training starts from.
    registry.register(tiny_model, base_model=str(tiny_model), kind=records_pb2.CHECKPOINT_KIND_FULL)
    process = _trainer(tmp_path, tiny_model, "--epochs", "200", "--eval-problems", "0")
    deadline = time.monotonic() + 240
    seen = []
    for line in process.stdout:  # a loss line means an optimizer step ran: mid-training
        seen.append(line)
        if "'loss'" in line:
            break
        assert time.monotonic() < deadline, "training never started"
    assert process.poll() is None, "the trainer ended before it was killed: " + "".join(seen)[-3000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    after = CheckpointRegistry(tmp_path / "registry")
    assert [c.version for c in after.list()] == ["v1"]
    assert sorted(p.name for p in (tmp_path / "registry" / "checkpoints").iterdir()) == ["v1"]


def test_training_progress_shows_as_metrics(tmp_path, tiny_model):
    from trainer.config import TrainSettings
    from trainer.sft import TRAIN_LOSS, TRAIN_STEPS, train

    steps_before = TRAIN_STEPS._value.get()
    examples = load_examples(_export(tmp_path / "c.jsonl"))
    train(examples, str(tiny_model), tmp_path / "out", TrainSettings(batch_size=2))
    assert TRAIN_STEPS._value.get() - steps_before == 2  # 4 examples, batch size 2, one epoch
    assert TRAIN_LOSS._value.get() > 0


def test_full_fine_tuning_with_nll_from_a_parquet_export(tmp_path, tiny_model):
    from datasets import Dataset

    rows = [json.loads(line) for line in _export(tmp_path / "curated.jsonl").read_text().splitlines()]
    Dataset.from_list(rows).to_parquet(str(tmp_path / "curated.parquet"))
    env = dict(os.environ, TMPDIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "trainer.sft", str(tmp_path / "curated.parquet"), "--no-lora",
                           "--loss-type", "nll", "--base-model", str(tiny_model), "--registry",
                           str(tmp_path / "registry"), "--eval-problems", "0"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [checkpoint] = CheckpointRegistry(tmp_path / "registry").list()
    assert checkpoint.kind == records_pb2.CHECKPOINT_KIND_FULL and dict(checkpoint.eval) == {}
    assert list(checkpoint.example_ids) == [f"example-{i}" for i in range(4)]
    files = {p.name for p in (tmp_path / "registry" / checkpoint.path).iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files
    metrics = json.loads((tmp_path / "registry" / checkpoint.path / "train_metrics.json").read_text())
    assert metrics["train_loss"] > 0


def test_each_registered_checkpoint_loaded_fresh_is_the_model_that_was_trained(tmp_path, tiny_model):
    """Two LoRA rounds, then a full fine-tuning round, each from the newest checkpoint. Each checkpoint's probe (the
    log-probs of a training example under the trained model, in memory, recorded at training) agrees to 1e-4 with
    the checkpoint loaded fresh from the registry by the transformers back end; and every round moved the model far
    more than that, so agreement cannot come from loading an older model."""
    from learnerfit.models.transformers_backend import TransformersScorer
    from trainer.config import TrainSettings
    from trainer.sft import train_and_register

    registry = CheckpointRegistry(tmp_path / "registry")
    examples = load_examples(_export(tmp_path / "c.jsonl"))
    lora = TrainSettings(base_model=str(tiny_model), learning_rate=5e-3, batch_size=2, eval_problems=0)
    for settings in (lora, lora, lora.model_copy(update={"lora": False})):
        train_and_register(registry, examples, settings)
    checkpoints = registry.list()
    assert [c.kind for c in checkpoints] == [records_pb2.CHECKPOINT_KIND_ADAPTER, records_pb2.CHECKPOINT_KIND_ADAPTER,
                                             records_pb2.CHECKPOINT_KIND_FULL]
    probes = []
    for checkpoint in checkpoints:
        folder = registry.path_of(checkpoint)
        probe = json.loads((folder / "probe.json").read_text())
        [loaded] = TransformersScorer(str(folder)).score([probe["conversation"]], [probe["solution"]])
        gap = max(abs(a - b) for a, b in zip(loaded.logprobs, probe["logprobs"], strict=True))
        assert gap < 1e-4, f"{checkpoint.version} loaded from the registry differs from the trained model by {gap}"
        assert not [p for p in folder.rglob("*")
                    if p.suffix not in (".safetensors", ".json", ".jsonl", ".jinja", ".txt", ".md")]
        probes.append(probe)
    [base] = TransformersScorer(str(tiny_model)).score([probes[0]["conversation"]], [probes[0]["solution"]])
    before = [base.logprobs] + [p["logprobs"] for p in probes[:-1]]
    for version, earlier, probe in zip(("v1", "v2", "v3"), before, probes, strict=True):
        moved = max(abs(a - b) for a, b in zip(earlier, probe["logprobs"], strict=True))
        assert moved > 1e-2, f"training {version} barely moved the model ({moved})"


def test_the_registry_refuses_a_checkpoint_holding_pickles(tmp_path):
    from learnerfit.errors import InvalidInput

    source = tmp_path / "pickled"
    source.mkdir()
    (source / "model.safetensors").write_bytes(b"weights")
    (source / "training_args.bin").write_bytes(b"a pickle")
    registry = CheckpointRegistry(tmp_path / "registry")
    try:
        registry.register(source, base_model="m", kind=records_pb2.CHECKPOINT_KIND_FULL)
    except InvalidInput as error:
        assert "training_args.bin" in str(error)
    else:
        raise AssertionError("a checkpoint with a pickle was registered")
    assert registry.list() == []
