"""Fine-tunes the learner on curated examples with TRL's SFTTrainer, evaluates it, registers the checkpoint.

Loss on the solution only: each example becomes a conversational prompt-completion
pair (the sampling conversation, then the chosen solution), for which TRL computes
the loss on the completion. `loss_type` is `nll` (plain SFT) or `dft` (Dynamic
Fine-Tuning, the paper's main recipe). LoRA (peft) or full fine-tuning. Defaults
follow the paper: learning rate 5e-5, one epoch.

The checkpoint is written to a scratch folder and only registered (atomically) after
training and evaluation finished, so a crash at any point registers nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import Counter, Gauge

from learnerfit.errors import FailedPrecondition
from learnerfit.registry.store import PICKLE_SUFFIXES, CheckpointRegistry
from learnerfit.section import add_flags, from_flags
from learnerfit.v1 import records_pb2, services_pb2
from trainer.config import TrainSettings
from trainer.evaluate import HeldOutEvaluator

log = logging.getLogger(__name__)
TRAIN_LOSS = Gauge("learnerfit_trainer_loss", "Training loss at the latest logged step.")
TRAIN_STEPS = Counter("learnerfit_trainer_steps_total", "Optimizer steps taken by the trainer.")


def sft_rows(examples: Sequence[records_pb2.CuratedExample]) -> list[dict]:
    """Conversational prompt-completion rows: TRL computes the loss on the completion (the solution) only."""
    rows = []
    for example in examples:
        messages = [{"role": m.role, "content": m.content} for m in example.messages]
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError(f"curated example {example.id} does not end with the assistant's solution")
        rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return rows


def starting_model(start: str, settings: TrainSettings, device: str):
    """(tokenizer, model, peft_config, merge_after): what training starts from, chosen so that every registered
    checkpoint, loaded as registered, is the model that was trained.

    * an adapter checkpoint is trained further, the same adapter on the same base (so every adapter applies to the
      base model alone, and vLLM can switch adapters per request on one base engine); for full fine-tuning it is
      merged into the base first;
    * the base model or a full checkpoint gets a new adapter (LoRA) or is trained whole. An adapter trained on a
      full checkpoint is merged into it before registering (`merge_after`), since its base is not the base model.
    """
    from learnerfit.models.transformers_backend import load_causal_lm

    if (Path(start) / "adapter_config.json").is_file():
        from peft import PeftModel

        tokenizer, base = load_causal_lm(settings.base_model, device=device, dtype="float32", trust_remote_code=False)
        model = PeftModel.from_pretrained(base, start, is_trainable=settings.lora)
        if not settings.lora:
            model = model.merge_and_unload()
            model.requires_grad_(True)  # the adapter was loaded frozen; full fine-tuning trains every weight
        return tokenizer, model, None, False
    tokenizer, model = load_causal_lm(start, device=device, dtype="float32", trust_remote_code=False)
    peft_config = None
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank, lora_dropout=0.0,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    return tokenizer, model, peft_config, settings.lora and start != settings.base_model


def fine_tune(examples: Sequence[records_pb2.CuratedExample], start: str, settings: TrainSettings = TrainSettings()):
    """(tokenizer, trained model in memory, metrics). `start` is the base model, or a registered checkpoint's folder
    trained from it."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not examples:
        raise ValueError("no curated examples to train on")
    torch.manual_seed(settings.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer, model, peft_config, merge_after = starting_model(start, settings, device)
    tokenizer.padding_side = "right"  # training pads on the right
    model.train()
    with tempfile.TemporaryDirectory(prefix="learnerfit-trainer-state-") as state:
        config = SFTConfig(
            output_dir=state, num_train_epochs=settings.epochs, max_steps=settings.max_steps or -1,
            learning_rate=settings.learning_rate, per_device_train_batch_size=settings.batch_size,
            loss_type=settings.loss_type, max_length=settings.max_length, logging_steps=1, save_strategy="no",
            report_to=[], seed=settings.seed, use_cpu=device == "cpu", disable_tqdm=True,
            bf16=False, gradient_checkpointing=False,  # TRL turns both on; on CPU they cost far more than they save
        )
        trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(sft_rows(examples)),
                             processing_class=tokenizer, peft_config=peft_config,
                             callbacks=[_progress_metrics_callback()])
        result = trainer.train()
    log.info("trained on %d examples: %s", len(examples), result.metrics)
    tokenizer.padding_side = "left"
    trained = trainer.model.eval()
    if merge_after:
        trained = trained.merge_and_unload()  # a new adapter on a full checkpoint: registered as full weights
    return tokenizer, trained, {**result.metrics, "global_step": result.global_step}


def register_as(model) -> int:
    """The registry kind of a trained model: an adapter (peft) or full weights."""
    return records_pb2.CHECKPOINT_KIND_ADAPTER if hasattr(model, "peft_config") else records_pb2.CHECKPOINT_KIND_FULL


def save_checkpoint(tokenizer, model, out_dir: Path, metrics: dict, probe: records_pb2.CuratedExample) -> Path:
    """Safetensors and JSON (plus the tokenizer's text files), no pickles: the adapter or full weights, the
    tokenizer, the training metrics, and `probe.json`: the trained model's log-probs of one training example,
    measured in memory, so a loaded checkpoint can be checked against the model that was trained."""
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / "probe.json").write_text(json.dumps(probe_logprobs(tokenizer, model, probe)) + "\n")
    pickles = [p.name for p in out_dir.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise RuntimeError(f"checkpoint {out_dir} would hold pickle files: {pickles}")
    return out_dir


def probe_logprobs(tokenizer, model, example: records_pb2.CuratedExample) -> dict:
    """The solution's per-token log-probs under `model`, one plain forward pass over the chat-templated example."""
    import torch

    from learnerfit.models.chat import encode_reply

    conversation = [{"role": m.role, "content": m.content} for m in example.messages[:-1]]
    solution = example.messages[-1].content
    prompt_ids, solution_ids = encode_reply(tokenizer, conversation, solution)
    ids = torch.tensor([prompt_ids + solution_ids], device=next(model.parameters()).device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
    logprobs = torch.log_softmax(logits, dim=-1).gather(1, ids[0, len(prompt_ids):, None])[:, 0]
    return {"conversation": conversation, "solution": solution, "logprobs": logprobs.tolist()}


def train(examples: Sequence[records_pb2.CuratedExample], start: str, out_dir: Path,
          settings: TrainSettings = TrainSettings()) -> tuple[Path, int, dict]:
    """Trains from `start` and saves to `out_dir`: (out_dir, the registry kind it holds, the training metrics)."""
    tokenizer, model, metrics = fine_tune(examples, start, settings)
    return save_checkpoint(tokenizer, model, out_dir, metrics, examples[0]), register_as(model), metrics


def _progress_metrics_callback():
    from transformers import TrainerCallback

    class ProgressMetrics(TrainerCallback):
        """Loss and steps as Prometheus metrics while training runs (TRL logs them as lines too)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                TRAIN_LOSS.set(float(logs["loss"]))
                log.info("step %d/%d loss %.4f", state.global_step, state.max_steps, float(logs["loss"]))

        def on_step_end(self, args, state, control, **kwargs):
            TRAIN_STEPS.inc()

    return ProgressMetrics()


def evaluate(registry: CheckpointRegistry, version: str, evaluator: HeldOutEvaluator) -> dict[str, float]:
    """The held-out Avg@k of the base model ("" or "base") or of a registered checkpoint."""
    return evaluator(learner_path(registry, version, evaluator.settings.base_model))


def learner_path(registry: CheckpointRegistry, version: str, base_model: str) -> str:
    """What to load for the base model ("" or "base") or a registered checkpoint."""
    return base_model if version in ("", "base") else str(registry.path_of(registry.get(version)))


def newest_learner(registry: CheckpointRegistry, base_model: str, start_from: str = "") -> tuple[str, str]:
    """(name, what to load) of the learner to fine-tune next: `start_from` ("base" or a registered version), else the
    checkpoint the learner services follow (the promoted one promoted last), else the base. A registry whose
    checkpoints grew from another base model is refused: training on would mix two learners."""
    if start_from == "base":
        return "base", base_model
    latest = registry.get(start_from) if start_from else registry.followed()
    if latest is None:
        return "base", base_model
    if latest.base_model != base_model:
        raise FailedPrecondition(f"the registry's followed checkpoint {latest.version} was trained from "
                                 f"{latest.base_model!r}, not the trainer's base_model {base_model!r}: use another "
                                 "registry, or set train.base_model to match")
    return latest.version, str(registry.path_of(latest))


def train_and_register(registry: CheckpointRegistry, examples: Sequence[records_pb2.CuratedExample],
                       settings: TrainSettings, start_from: str = "",
                       evaluator: HeldOutEvaluator | None = None,
                       promotion: records_pb2.Promotion | None = None,
                       replay: Sequence[records_pb2.CuratedExample] = ()) -> records_pb2.Checkpoint:
    """Fine-tunes the learner (the registry's followed checkpoint, else the base model, or `start_from`), evaluates
    it on held-out problems and registers it, with `promotion` as its state (pending while a gate decides): all or
    nothing. Every judged held-out sample goes with the checkpoint (HELD_OUT_FILE): the evidence a promotion decision
    compares; and every example it was trained on (EXAMPLES_FILE): `replay`, earlier examples mixed in, are among
    them but not in its example ids (those list what it was the first to train on).

    The one training path: `python -m trainer.sft` and the trainer service (which `learnerfit run --rounds` asks).
    """
    evaluator = evaluator or HeldOutEvaluator(settings)
    name, start = newest_learner(registry, settings.base_model, start_from)
    log.info("training on %d curated examples from %s", len(examples), name)
    with tempfile.TemporaryDirectory(prefix="learnerfit-train-") as scratch:
        out, kind, metrics = train([*examples, *replay], start, Path(scratch) / "checkpoint", settings)
        write_examples(out, [*examples, *replay])
        samples = evaluator.judge(out)
        eval_results = evaluator.scores(samples)
        if samples:
            write_held_out(out, evaluator.evidence_key(), samples)
        log.info("held-out %s", eval_results)
        recipe = records_pb2.TrainingRecipe(
            start_from=name, seed=settings.seed, epochs=0.0 if settings.max_steps else settings.epochs,
            max_steps=settings.max_steps, learning_rate=settings.learning_rate, steps=int(metrics["global_step"]),
            replayed=len(replay))
        return registry.register(
            out, base_model=settings.base_model, kind=kind,
            example_ids=[e.id for e in examples], policy=",".join(sorted({e.policy for e in examples if e.policy})),
            eval_results=eval_results, training=recipe, promotion=promotion)


HELD_OUT_FILE = "held_out.json"  # in a checkpoint's folder: its judged held-out samples and how they were drawn
EXAMPLES_FILE = "examples.jsonl"  # in a checkpoint's folder: every example it was trained on


def write_examples(folder: Path, examples: Sequence[records_pb2.CuratedExample]) -> None:
    from google.protobuf.json_format import MessageToJson

    (folder / EXAMPLES_FILE).write_text("".join(MessageToJson(e, indent=None) + "\n" for e in examples))


def read_examples(folder: Path) -> list[records_pb2.CuratedExample]:
    """What a checkpoint was trained on (none for one registered before the file was kept)."""
    from google.protobuf.json_format import Parse

    path = folder / EXAMPLES_FILE
    if not path.is_file():
        return []
    return [Parse(line, records_pb2.CuratedExample()) for line in path.read_text().splitlines() if line.strip()]


def write_held_out(folder: Path, key: dict, samples: Sequence) -> None:
    from google.protobuf.json_format import MessageToDict

    (folder / HELD_OUT_FILE).write_text(json.dumps({"key": key, "samples": [MessageToDict(s) for s in samples]}))


def read_held_out(folder: Path, key: dict) -> list | None:
    """The samples stored with a checkpoint, if they were drawn as `key` says (else None: evaluate again)."""
    from google.protobuf.json_format import ParseDict

    path = folder / HELD_OUT_FILE
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    if stored.get("key") != key:
        return None
    return [ParseDict(s, services_pb2.HeldOutSample()) for s in stored["samples"]]


def load_examples(path: Path) -> list[records_pb2.CuratedExample]:
    """Curated examples from `learnerfit export` output (JSONL or Parquet)."""
    from google.protobuf.json_format import ParseDict

    if path.suffix == ".parquet":
        from datasets import Dataset

        rows = Dataset.from_parquet(str(path)).to_list()
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    examples = []
    for row in rows:
        example = records_pb2.CuratedExample(id=row.get("id", ""), policy=row.get("policy", ""))
        for message in row["messages"]:
            example.messages.append(ParseDict(message, records_pb2.ChatMessage()))
        examples.append(example)
    return examples


def main(argv: list[str] | None = None) -> int:
    from learnerfit.paths import default_registry_dir

    parser = argparse.ArgumentParser(prog="python -m trainer.sft", description="Fine-tune the learner on curated "
                                     "examples (JSONL or Parquet from `learnerfit export`) and register the result. "
                                     "Defaults are the trainer service's `train` settings.")
    parser.add_argument("examples", type=Path)
    parser.add_argument("--registry", type=Path, default=default_registry_dir(),
                        help="registry root (default: %(default)s)")
    add_flags(parser, TrainSettings)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = from_flags(TrainSettings, args)
    examples = load_examples(args.examples)
    registry = CheckpointRegistry(args.registry)  # opened first: a bad registry fails before training
    checkpoint = train_and_register(registry, examples, settings)
    print(f"registered {checkpoint.version} at {checkpoint.uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
