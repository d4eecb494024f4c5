"""Settings every model-using service shares: which model, on which engine and device."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from services.backends.weights import DEFAULT_CACHE, SMOLLM2
from services.common.settings import ServiceSettings


class ModelSettings(ServiceSettings):
    model: str = Field(
        SMOLLM2, description="Model: 'smollm2-135m-instruct' (packaged), a local directory, or a Hugging Face id."
    )
    backend: Literal["transformers"] = Field("transformers", description="Inference engine.")
    device: str = Field("cpu", description="Torch device, e.g. cpu or cuda:0.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weight dtype.")
    torch_threads: int = Field(
        1, ge=1, le=256, description="CPU threads for torch; several services on few cores starve each other above 1."
    )
    max_batch_sequences: int = Field(64, ge=1, description="Most sequences in one forward/generate pass.")
    trust_remote_code: bool = Field(False, description="Allow model repositories to run their own code.")
    model_cache_dir: Path = Field(DEFAULT_CACHE, description="Where converted and downloaded weights are kept.")
