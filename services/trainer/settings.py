"""Settings of the trainer service."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from services.backends.weights import DEFAULT_CACHE, SMOLLM2
from services.common import topics
from services.common.settings import StageSettings


class TrainerSettings(StageSettings):
    """Trainer: fine-tunes the learner on curated examples (TRL SFT, dft or nll) and registers each checkpoint."""

    service_name: ClassVar[str] = "trainer"

    base_model: str = Field(SMOLLM2, description="Learner to fine-tune when the registry has no checkpoint yet.")
    registry_dir: Path = Field(DEFAULT_CACHE / "registry", description="Checkpoint registry to train into.")
    train_every: int = Field(32, ge=1, description="Train once this many new curated examples have arrived.")
    loss_type: Literal["dft", "nll"] = Field("dft", description="dft (Dynamic Fine-Tuning, the paper's) or nll.")
    lora: bool = Field(True, description="Train a LoRA adapter (else full fine-tuning).")
    learning_rate: float = Field(5e-5, gt=0, description="The paper's default.")
    epochs: float = Field(1.0, gt=0, description="The paper's default.")
    eval_problems: int = Field(16, ge=0, description="Held-out problems for Avg@k after training (0: skip).")
    eval_k: int = Field(4, ge=1, description="Samples per held-out problem (Avg@k).")
    curated_topic: str = Field(topics.CURATED, description="Topic the curated examples are read from.")
    checkpoints_topic: str = Field(topics.CHECKPOINTS, description="Topic each registered checkpoint is announced on.")
    max_batch: int = Field(256, ge=1, le=4096, description="Most curated examples taken per poll.")
