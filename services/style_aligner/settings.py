"""Settings of the style aligner service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.backends.weights import SMOLLM2
from services.refiner.settings import OracleSettings


class StyleAlignerSettings(OracleSettings):
    """Style aligner: the Oracle repairs learner traces in the learner's own style (rewrite), or fixes the first
    wrong step of a failed trace and lets the learner finish it (repair), for the batches that ask for them."""

    service_name: ClassVar[str] = "style_aligner"

    style_window: int = Field(64, ge=1, le=100_000, description="Recent learner samples the style card is made of.")
    learner_model: str = Field(SMOLLM2, description="repair: the learner that continues from the repaired prefix "
                                                     "(transformers back end, same device and dtype).")
    learner_max_new_tokens: int = Field(96, ge=1, le=8192, description="repair: longest learner continuation.")
