"""The trainer's SFT path on a tiny learner: trains, evaluates Avg@k, registers; killed mid-training, registers nothing."""

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
    source = tmp_path / "earlier"
    source.mkdir()
    (source / "weights.bin").write_bytes(b"earlier checkpoint")
    registry.register(source, base_model="m", kind=records_pb2.CHECKPOINT_KIND_FULL)
    process = _trainer(tmp_path, tiny_model, "--epochs", "200", "--eval-problems", "0")
    deadline = time.monotonic() + 240
    for line in process.stdout:  # a loss line means an optimizer step ran: mid-training
        if "'loss'" in line:
            break
        assert time.monotonic() < deadline and process.poll() is None, "training never started"
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
