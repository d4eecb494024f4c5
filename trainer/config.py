"""Training hyper-parameters: the trainer service's `train` section, read by `python -m trainer.sft`, the trainer
service and `learnerfit run --rounds` alike. Defaults follow the paper (lr 5e-5, one epoch, DFT)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from learnerfit.models.settings import SMOLLM2
from learnerfit.section import Section


class TrainSettings(Section):
    """How the learner is fine-tuned and evaluated."""

    base_model: str = Field(SMOLLM2, description="Learner to fine-tune while the registry has no checkpoint yet.")
    loss_type: Literal["dft", "nll"] = Field("dft", description="dft (Dynamic Fine-Tuning, the paper's) or nll "
                                                                "(plain SFT).")
    lora: bool = Field(True, description="Train a LoRA adapter (else full fine-tuning).")
    learning_rate: float = Field(5e-5, gt=0, description="The paper's default.")
    epochs: float = Field(1.0, gt=0, description="The paper's default.")
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step.")
    lora_rank: int = Field(16, ge=1, description="LoRA rank (alpha is twice it).")
    max_length: int = Field(512, ge=16, description="Longest training sequence, in tokens.")
    seed: int = Field(0, description="Training seed.")
    eval_problems: int = Field(16, ge=0, description="Held-out problems for Avg@k after training (0: skip).")
    eval_k: int = Field(4, ge=1, description="Samples per held-out problem (Avg@k).")
