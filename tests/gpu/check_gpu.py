"""The GPU check that needs no vLLM: CUDA torch and transformers only, no network, under 10 minutes.

    python tests/gpu/check_gpu.py [--model DIR] [--out DIR]

Not part of `make test` (CI has no GPU). On a GPU machine without network, carry the
wheels it lacks (`make gpu-wheels` downloads them into .whl; see tests/gpu/README.md).
With no --model it builds the tests' tiny random-weight Llama (tests/tiny_model.py), so
no model needs to travel; the numerics checked do not depend on the weights being good.

What it checks, printing one line per check and a JSON summary (to --out if given):
1. versions: python, torch, CUDA, the GPU, transformers, peft, trl;
2. the transformers back end on CUDA in float32 and bfloat16 against the CPU in float32:
   log-probs of the same solutions (float32 within 1e-3 nats per token at most, bfloat16
   within 0.05 on average: bf16 keeps 8 bits of mantissa);
3. N-sample generation on CUDA (N per prompt, the seed deciding), a reply prefix
   continued, token counts with the end-of-sequence token counted;
4. two LoRA rounds and a full round trained on CUDA, each registered checkpoint loaded
   fresh on CUDA agreeing with the trained model's own log-probs (probe.json) to 1e-3;
5. the Triton python model on GPU, when `tritonserver` is found (LEARNERFIT_TRITON_HOME):
   rewards from the GPU configuration against the in-process model on CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from learnerfit.domain.inference import SamplingParams  # noqa: E402
from learnerfit.models.transformers_backend import TransformersGenerator, TransformersScorer  # noqa: E402

RESULTS: dict[str, object] = {}
DEVICE = "cuda"  # --device cpu runs the same code on the CPU: a rehearsal of the script, not a GPU result


def check(name: str, ok: bool, detail: str) -> None:
    RESULTS[name] = {"ok": ok, "detail": detail}
    print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}", flush=True)


def versions() -> None:
    import peft
    import transformers

    try:
        import trl

        trl_version = trl.__version__
    except ImportError:
        trl_version = "missing"
    RESULTS["versions"] = {
        "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if DEVICE.startswith("cuda") else "none (rehearsal on the CPU)",
        "transformers": transformers.__version__, "peft": peft.__version__,
        "trl": trl_version}
    print("versions:", json.dumps(RESULTS["versions"]), flush=True)


def conversations(count: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"Calculate {i % 10} + {i % 7}. Show each step."}] for i in range(count)]


def logprob_agreement(model: str) -> None:
    prompts = conversations(32)
    solutions = [f"{i % 10} + {i % 7} = {i % 10 + i % 7}\nFinal answer: {i % 10 + i % 7}" for i in range(32)]
    reference = TransformersScorer(model, device="cpu", dtype="float32").score(prompts, solutions)
    for dtype, bound, reduce in (("float32", 1e-3, max), ("bfloat16", 0.05, lambda d: sum(d) / len(d))):
        started = time.perf_counter()
        on_gpu = TransformersScorer(model, device=DEVICE, dtype=dtype).score(prompts, solutions)
        seconds = time.perf_counter() - started
        deltas = [abs(a - b) for x, y in zip(on_gpu, reference, strict=True)
                  for a, b in zip(x.logprobs, y.logprobs, strict=True)]
        gap = reduce(deltas)
        check(f"logprobs {DEVICE} {dtype} vs cpu float32", gap < bound,
              f"{'max' if dtype == 'float32' else 'mean'} |delta| {gap:.2e} (bound {bound}), {len(deltas)} tokens, "
              f"{seconds:.2f}s")


def generation(model: str) -> None:
    generator = TransformersGenerator(model, device=DEVICE, dtype="bfloat16")
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=24, seed=3)
    samples = generator.generate(conversations(8), params)
    again = generator.generate(conversations(8), params)
    same = [[c.text for c in s] for s in samples] == [[c.text for c in s] for s in again]
    check(f"generate n=4 on {DEVICE}", all(len(s) == 4 for s in samples) and same,
          f"{sum(len(s) for s in samples)} samples, the same again with the same seed: {same}")
    [[continued]] = generator.generate(conversations(1), SamplingParams(n=1, temperature=0.0, max_new_tokens=8),
                                       prefixes=["Step 1: 0 + 0"])
    check(f"prefix continued on {DEVICE}", continued.text.startswith("Step 1: 0 + 0"), repr(continued.text[:60]))
    # The counting rule itself is checked on the CPU (tests/models); here: the same code holds on the device.
    bounded = all(c.token_count == 24 if c.truncated else 0 < c.token_count <= 24 for s in samples for c in s)
    check("token counts", bounded, f"{sum(c.truncated for s in samples for c in s)} of 32 samples hit the cap of 24")


def training(model: str) -> None:
    from learnerfit.registry.store import CheckpointRegistry
    from learnerfit.v1 import records_pb2
    from trainer.config import TrainSettings
    from trainer.sft import train_and_register

    examples = []
    for i in range(8):
        example = records_pb2.CuratedExample(id=f"example-{i}", policy="gpu-check")
        example.messages.add(role="user", content=f"Calculate {i} + 1.")
        example.messages.add(role="assistant", content=f"{i} + 1 = {i + 1}\nFinal answer: {i + 1}")
        examples.append(example)
    with tempfile.TemporaryDirectory() as scratch:
        registry = CheckpointRegistry(Path(scratch) / "registry")
        lora = TrainSettings(base_model=model, learning_rate=5e-3, batch_size=4, eval_problems=0)
        started = time.perf_counter()
        for settings in (lora, lora, lora.model_copy(update={"lora": False})):
            train_and_register(registry, examples, settings)
        seconds = time.perf_counter() - started
        for checkpoint in registry.list():
            folder = registry.path_of(checkpoint)
            probe = json.loads((folder / "probe.json").read_text())
            [loaded] = TransformersScorer(str(folder), device=DEVICE).score([probe["conversation"]],
                                                                             [probe["solution"]])
            gap = max(abs(a - b) for a, b in zip(loaded.logprobs, probe["logprobs"], strict=True))
            check(f"registered {checkpoint.version} ({records_pb2.CheckpointKind.Name(checkpoint.kind)}) is the "
                  "trained model", gap < 1e-3, f"max |delta| {gap:.2e} loaded fresh on {DEVICE}")
    RESULTS["training_seconds"] = round(seconds, 1)


def triton_on_gpu() -> None:
    """Skipped (and said so) when no tritonserver or no built reward model is on the machine."""
    from learnerfit.local.triton import TritonServer, triton_home
    from learnerfit.models.triton_repository import write_model_repository
    from learnerfit.models.reward import TransformersRewardModel
    from learnerfit.models.triton_backend import TritonRewardModel
    from learnerfit.models.weights import reward_model_dir
    from learnerfit.paths import default_cache_dir

    weights = reward_model_dir(default_cache_dir())
    try:
        triton_home()
        if not (weights / "model.safetensors").is_file():
            raise FileNotFoundError(f"no reward model built in {weights} (make models)")
    except (RuntimeError, FileNotFoundError) as error:
        RESULTS["triton"] = f"not run: {error}"
        print(f"[skip] triton python model: not run ({error})", flush=True)
        return
    gpu = DEVICE.startswith("cuda")
    with tempfile.TemporaryDirectory() as scratch:
        repo = write_model_repository(Path(scratch) / "models", weights, gpu=gpu)
        with TritonServer(repo, Path(scratch)) as server:
            remote = TritonRewardModel(server.url, "reward_model", model_name="reward", tokenizer=str(weights))
            questions = [f"Calculate {i} + 2." for i in range(300)]
            solutions = [f"{i} + 2 = {i + 2}\nFinal answer: {i + 2}" for i in range(300)]
            served = remote.rewards(questions, solutions)
            remote.close()
    reference = TransformersRewardModel(str(weights)).rewards(questions, solutions)
    gap = max(abs(a - b) for a, b in zip(served, reference, strict=True))
    check(f"triton python model ({'GPU, bfloat16' if gpu else 'CPU'}) vs in-process CPU float32",
          gap < (0.05 if gpu else 1e-4), f"max |delta| {gap:.2e} over 300 sequences")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local model directory (default: the tests' tiny Llama, built here)")
    parser.add_argument("--out", type=Path, help="folder for gpu-check.json")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to rehearse the script")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: this check runs on a GPU machine", file=sys.stderr)
        return 2
    started = time.perf_counter()
    versions()
    model = args.model
    if model is None:
        from tests.tiny_model import build_tiny_model

        model = str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    for step in (logprob_agreement, generation, training):
        try:
            step(model)
        except Exception as error:  # noqa: BLE001 (one broken step must not hide the others' results)
            check(step.__name__, False, f"{type(error).__name__}: {error}")
    try:
        triton_on_gpu()
    except Exception as error:  # noqa: BLE001
        check("triton_on_gpu", False, f"{type(error).__name__}: {error}")
    RESULTS["seconds"] = round(time.perf_counter() - started, 1)
    failed = [name for name, result in RESULTS.items() if isinstance(result, dict) and result.get("ok") is False]
    print(json.dumps(RESULTS, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu-check.json").write_text(json.dumps(RESULTS, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
