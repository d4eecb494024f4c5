"""The reward model's Triton model repository: deploy/triton/reward_model laid out with its configuration filled in.

One layout for the local Triton server (learnerfit/local/triton.py, the tests) and the Triton image
(deploy/docker/triton.Dockerfile, through `python -m learnerfit.generate triton-repository`).
"""

from __future__ import annotations

import re
import shutil
import site
from pathlib import Path

MODEL_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "triton" / "reward_model"
TRITON_MODEL = "reward_model"


def write_model_repository(repo: Path, weights: Path, *, torch_threads: int = 1, gpu: bool = False,
                           max_batch_size: int | None = None, python_path: str | None = None) -> Path:
    """A model repository with the reward model pointing at `weights`. `gpu` takes the GPU configuration
    (config.gpu.pbtxt); `max_batch_size` overrides the configuration's; `python_path`: where the model's Python
    backend finds torch and transformers (default: this environment's packages; "" in an image that has them)."""
    model_dir = repo / TRITON_MODEL
    shutil.copytree(MODEL_TEMPLATE, model_dir, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "config*.pbtxt"))
    config = (MODEL_TEMPLATE / ("config.gpu.pbtxt" if gpu else "config.pbtxt")).read_text()
    if max_batch_size is not None:
        config = re.sub(r"(?m)^max_batch_size: \d+$", f"max_batch_size: {max_batch_size}", config)
    config = (config.replace("@WEIGHTS@", str(Path(weights).resolve()))
              .replace("@PYTHON_PATH@", ":".join(site.getsitepackages()) if python_path is None else python_path)
              .replace("@TORCH_THREADS@", str(torch_threads)))
    (model_dir / "config.pbtxt").write_text(config)
    return repo
