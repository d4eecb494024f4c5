"""`learnerfit run | up | down`: the local stack (broker and every service as a process), and the closed loop.

The CLI hands each service a config file (learnerfit/local/stack.py writes it from
what is set here); it reaches the services only over gRPC.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from learnerfit.cli.addresses import CALLABLE, target_flag
from learnerfit.cli.batches import add_problem_options, export_batch, submit_request, wait_for_batch
from learnerfit.cli.output import console, print_batch, say
from learnerfit.domain.promotion import PromotionSettings
from learnerfit.errors import InvalidInput
from learnerfit.local.processes import channel
from learnerfit.local.stack import LocalStack, stop_recorded_stack
from learnerfit.models.settings import REWARD_MINILM, SMOLLM2, EngineSettings, OracleSettings
from learnerfit.models.weights import ensure_smollm2, reward_model_dir
from learnerfit.paths import default_cache_dir, default_registry_dir
from learnerfit.section import choices
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from trainer.config import PRESETS, TrainSettings
from trainer.reward_model import ensure_reward_model


def stack_config(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each service's settings for this run, as nested sections (the YAML each service is handed)."""
    learner = {"model": args.model}
    # The Oracle: an endpoint's model, a local model, else the rule-based teacher (offline, exact on the local
    # stack's arithmetic families), since the only LLM here, SmolLM2-135M, fails most Oracle tasks.
    oracle: dict[str, Any]
    if args.oracle_endpoint:
        oracle = {"backend": "openai", "endpoint": args.oracle_endpoint}
        oracle |= {"model": args.oracle_model} if args.oracle_model else {}
        if args.oracle_price:
            oracle["prices"] = {args.oracle_model or OracleSettings().model: args.oracle_price}
    elif args.oracle_model:
        oracle = {"backend": "transformers", "model": args.oracle_model}
    else:
        oracle = {"backend": "teacher", "teacher_register": args.teacher_register}
    registry_dir = str(Path(args.registry).resolve()) if args.registry else str(default_registry_dir())
    train: dict[str, Any] = {"base_model": args.model, **PRESETS[getattr(args, "train_preset", "cpu")]}
    for name in ("loss_type", "eval_problems", "eval_k", "max_steps", "eval_family"):
        if getattr(args, name, None) is not None:
            train[name] = getattr(args, name)
    promotion = {"gate": getattr(args, "gate", True)}
    config = {
        # Four problems (x N samples) per generate() call: their rows share the decode slots and
        # prompt prefix, and a call short enough lets scoring start while later problems generate.
        "generator": {"learner": dict(learner), "stage": {"max_batch": 4}},
        # The drift scorer measures perplexity under the same learner the generator samples.
        "drift_scorer": {"learner": dict(learner)},
        "refiner": {"oracle": dict(oracle)},
        "style_aligner": {"oracle": dict(oracle), "learner": dict(learner)},  # repair continues with the learner
        # The CLI asks for training (Train) when a round is curated; the trainer never starts on its own here.
        "trainer": {"registry_dir": registry_dir, "train_every": 0, "train": train, "promotion": promotion},
        "registry": {"registry_dir": registry_dir},
    }
    if getattr(args, "engine", "transformers") == "vllm":
        on_vllm(config, cuda=cuda_present())
    return config


def cuda_present() -> bool:
    import torch

    return torch.cuda.is_available()


ENGINES_GPU_SHARE = 0.6  # what the vLLM engines on one GPU take together; the rest is the trainer's and CUDA's


def on_vllm(config: dict[str, dict[str, Any]], cuda: bool) -> None:
    """Model services on vLLM. On a GPU every model service: the generator (checkpoints as LoRA adapters per
    request), the drift scorer (LoRA off: vLLM's prompt log-probs under LoRA are wrong, so an adapter checkpoint is
    merged and served whole), the LLM Oracles and the style aligner's learner, each engine an equal part of
    ENGINES_GPU_SHARE (gpu_memory_utilization is per engine; 0.85 each would fail the second to start). Without
    CUDA the CPU build runs the generator only: it samples faster than transformers there, while its scoring was
    3.5x slower (prompt log-probs over the whole prompt and vocabulary; bench/engines.py). And with LoRA off: a
    LoRA request samples at 0.44x of the base model on the CPU build (below transformers with the adapter), so
    each adapter checkpoint is merged and served by an engine of its own (about 40 s to start)."""
    if not cuda:
        config["generator"]["learner"] |= {"backend": "vllm", "device": "cpu", "cpu_cores": "0",
                                           "lora_adapters": False}
        return
    sections = [(service, name) for service, name in (("generator", "learner"), ("drift_scorer", "learner"),
                                                      ("refiner", "oracle"), ("style_aligner", "oracle"),
                                                      ("style_aligner", "learner"))
                if config[service][name].get("backend") not in ("openai", "teacher")]  # no model on this GPU
    for service, name in sections:
        config[service][name] |= {"backend": "vllm", "device": "cuda",
                                  "gpu_memory_utilization": round(ENGINES_GPU_SHARE / len(sections), 3)}
    config["drift_scorer"]["learner"] |= {"lora_adapters": False}
    # Held-out Avg@k on the GPU too, in the trainer's own process (transformers: no engine kept beside training).
    config["trainer"]["train"]["evaluator"] = {"device": "cuda"}


def make_stack(args: argparse.Namespace) -> LocalStack:
    return LocalStack(Path(args.dir), common={"log": {"level": args.log_level}}, config=stack_config(args))


def prepare_models(model: str) -> None:
    cache = default_cache_dir()
    if model == SMOLLM2:
        say("preparing SmolLM2-135M-Instruct weights (converted once from the packaged GGUF)")
        ensure_smollm2(cache)
    if not (reward_model_dir(cache) / "model.safetensors").is_file():
        say(f"training the local reward model {REWARD_MINILM} once (a reward head on MiniLM, about a minute)")
    ensure_reward_model(cache)


def cmd_up(args: argparse.Namespace) -> int:
    prepare_models(args.model)
    state = make_stack(args).start(on_progress=say)
    say(f"local stack up: broker {state.bootstrap_servers}, gateway {state.gateway}; logs in {args.dir}/logs")
    flags = " ".join(f"{target_flag(name)} {state.services[name].grpc_target}" for name in CALLABLE)
    say(f"its addresses, for `stream` or `study` from anywhere: {flags} --bootstrap-servers {state.bootstrap_servers}")
    say("stop it with `learnerfit down`")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = stop_recorded_stack(Path(args.dir))
    say(f"stopped {len(state.services)} services and the broker")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    submit_request(args)  # bad options fail here, before anything starts
    if args.rounds < 1:
        raise InvalidInput("--rounds", "must be at least 1")
    prepare_models(args.model)
    stack = make_stack(args)
    try:
        stack.start(on_progress=say)
        say(f"stack up in {time.monotonic() - started:.1f}s; logs in {args.dir}/logs")
        gateway = services_pb2_grpc.GatewayStub(channel(stack.state.gateway))
        trainer = services_pb2_grpc.TrainerStub(channel(stack.state.services["trainer"].grpc_target))
        base = None
        if args.rounds > 1 and args.eval_problems:
            # The score every checkpoint's is compared with, on the same held-out problems.
            base = trainer.Evaluate(services_pb2.EvaluateRequest(version="base"), timeout=args.timeout).eval.get(
                f"avg@{args.eval_k}")
            say(f"base model: held-out avg@{args.eval_k} {base:.3f}")
        for round_number in range(1, args.rounds + 1):
            run_round(args, round_number, gateway, trainer, stack, base)
    finally:
        say("stopping the local stack")
        stack.stop()
    return 0


def round_output(output: str, round_number: int, rounds: int) -> Path:
    """Where a round's curated examples go: --output itself for one round, else the round before its suffix
    (curated.jsonl -> curated.round2.jsonl; ./out/x.jsonl -> ./out/x.round2.jsonl; a name without a suffix gets
    .round2 at its end)."""
    path = Path(output)
    if rounds == 1:
        return path
    return path.with_name(f"{path.stem}.round{round_number}{path.suffix}")


def run_round(args: argparse.Namespace, round_number: int, gateway, trainer, stack: LocalStack,
              base: float | None) -> None:
    """Samples, scores and curates one batch; with --rounds, asks the trainer service to train on it."""
    request = submit_request(args, seed_offset=round_number - 1)  # each round: new problems of the same family
    started = time.monotonic()
    if args.rounds > 1:
        say(f"round {round_number}/{args.rounds}")
    batch_id = gateway.SubmitBatch(request).batch_id
    say(f"batch {batch_id}: {len(request.problems)} problems x {args.samples} samples")
    status = wait_for_batch(gateway, batch_id, args.timeout, started, stack.check_alive)
    path = round_output(args.output, round_number, args.rounds) if args.output else \
        Path(f"{args.dir}/runs/{batch_id}.jsonl")
    count = export_batch(gateway, batch_id, path)
    print_batch(status, time.monotonic() - started)
    console.print(f"curated examples ({count}): {path.resolve()}", highlight=False, soft_wrap=True)
    if args.rounds == 1:
        return
    accuracy = status.samples_correct / max(status.samples_scored, 1)
    if not status.curated:
        say(f"round {round_number}: learner accuracy {accuracy:.3f}; nothing curated, nothing to train")
        return
    say(f"round {round_number}: the trainer service trains on {status.curated} curated examples")
    # The trainer registers the checkpoint, its promotion gate decides, and it announces it; the generator and drift
    # scorer take it up at their next batch if it was promoted.
    request = services_pb2.TrainRequest(batch=services_pb2.HeldBatch(batch_id=batch_id, min_examples=status.curated))
    checkpoint = trainer.Train(request, timeout=args.timeout).checkpoint
    score = checkpoint.eval.get(f"avg@{args.eval_k}")
    held_out = f"held-out avg@{args.eval_k} {score:.3f}" if score is not None else "not evaluated"
    held_out += f" (base model {base:.3f})" if base is not None and score is not None else ""
    console.print(f"round {round_number}: learner accuracy on its samples {accuracy:.3f}; trained "
                  f"{checkpoint.version} on {len(checkpoint.example_ids)} examples ({args.loss_type}); {held_out}",
                  highlight=False, soft_wrap=True)
    promoted = checkpoint.promotion.state == records_pb2.PROMOTION_STATE_PROMOTED
    console.print(f"round {round_number}: {checkpoint.version} {'promoted' if promoted else 'not promoted'}: "
                  f"{checkpoint.promotion.reason}" + ("" if promoted else "; the learner stays as it was"),
                  highlight=False, soft_wrap=True)


def oracle_price(value: str) -> dict[str, float]:
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3) or any(not 0 <= n < float("inf") for n in numbers):
        raise argparse.ArgumentTypeError(f"{value!r}: give IN,OUT or IN,OUT,CACHED, USD per million tokens, >= 0")
    names = ("input_per_million", "output_per_million", "cached_input_per_million")
    return dict(zip(names, numbers))


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=SMOLLM2,
                        help="learner: 'smollm2-135m-instruct', a local model directory or a Hugging Face id")
    parser.add_argument("--oracle-endpoint",
                        help="OpenAI-compatible base URL of the Oracle (a hosted model or `vllm serve`, key in "
                             "OPENAI_API_KEY); default: the rule-based teacher, offline")
    parser.add_argument("--oracle-model", help="Oracle model name at --oracle-endpoint, or a local model run in "
                                               "process (e.g. smollm2-135m-instruct, a weak LLM stand-in)")
    parser.add_argument("--oracle-price", type=oracle_price, metavar="IN,OUT[,CACHED]",
                        help="what the --oracle-endpoint model costs, USD per million prompt, completion (and cached "
                             "prompt) tokens, e.g. 0.15,0.60,0.075: cost is then shown per origin and curated "
                             "example, and --oracle-budget-usd can cap it (default: no price, tokens only)")
    parser.add_argument("--teacher-register", choices=choices(OracleSettings, "teacher_register"),
                        default=OracleSettings().teacher_register,
                        help="the rule-based teacher's register: how far its text is from the learner's style, "
                             "correctness fixed (default: %(default)s)")
    parser.add_argument("--registry", help="checkpoint registry the trainer registers into and the learner follows "
                                           f"(default: {default_registry_dir()})")
    parser.add_argument("--log-level", default="INFO", help="services' log level (default: %(default)s)")
    parser.add_argument("--engine", choices=choices(EngineSettings, "backend"), default=EngineSettings().backend,
                        help="inference engine of the model services: transformers, or vllm (on one CUDA GPU shared by "
                             "every model service; without CUDA the CPU build, for the generator only; "
                             "default: %(default)s)")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    train = TrainSettings()
    group = parser.add_argument_group("training (the trainer service)")
    group.add_argument("--train-preset", choices=sorted(PRESETS), default="cpu",
                       help="learning rate and epochs: cpu (LoRA lr 1e-3, 2 epochs: moves SmolLM2 on a CPU in a few "
                            "rounds) or paper (lr 5e-5, 1 epoch, the paper's GPU setting; default: %(default)s)")
    group.add_argument("--loss-type", choices=choices(TrainSettings, "loss_type"), default=train.loss_type,
                       help="training loss (default: %(default)s)")
    group.add_argument("--eval-problems", type=int, default=train.eval_problems,
                       help="held-out problems per checkpoint eval (default: %(default)s)")
    group.add_argument("--eval-k", type=int, default=train.eval_k,
                       help="samples per held-out problem: Avg@k (default: %(default)s)")
    group.add_argument("--no-gate", dest="gate", action="store_false",
                       help="follow every new checkpoint at once; by default one is followed only once it measured "
                            f"not worse than the learner on the held-out problems (by more than "
                            f"{PromotionSettings().margin}, at {PromotionSettings().confidence:.0%}% confidence; at "
                            f"least {PromotionSettings().min_eval_samples} held-out samples when training on its own)")


def check_gate_size(args: argparse.Namespace) -> None:
    """Training on its own (stream), the gate needs a held-out set large enough to tell: refused before a stack
    starts rather than by the trainer at its start."""
    needed = PromotionSettings().min_eval_samples
    if args.gate and args.eval_problems * args.eval_k < needed:
        raise InvalidInput("--eval-problems", f"{args.eval_problems} x --eval-k {args.eval_k} = "
                           f"{args.eval_problems * args.eval_k} held-out samples; the promotion gate needs at least "
                           f"{needed} to tell a worse checkpoint from noise (or --no-gate)")


def register(commands, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser("run", parents=[common], help="start the stack, curate one batch end to end, export it, "
                                                            "stop",
                              description="Starts broker and services, submits a batch, shows progress, prints a "
                                          "summary and writes the curated examples to JSONL; stops everything after.")
    add_stack_options(run)
    add_problem_options(run)
    run.add_argument("--timeout", type=float, default=900, help="give up after this many seconds (default: %(default)s)")
    run.add_argument("--rounds", type=int, default=1,
                     help="closed loop: R rounds of sample -> score -> curate -> train (the trainer service) -> "
                          "evaluate; the generator and drift scorer follow each announced checkpoint (default: "
                          "%(default)s, no training)")
    add_training_options(run)
    run.add_argument("--output", help="JSONL path, or .parquet for Parquet (default: <dir>/runs/<batch>.jsonl)")
    run.set_defaults(func=cmd_run)

    up = commands.add_parser("up", parents=[common], help="start the broker and every service in the background")
    add_stack_options(up)
    add_training_options(up)  # its trainer's, for Train calls (`stream` or `study` given its addresses)
    up.set_defaults(func=cmd_up)

    down = commands.add_parser("down", parents=[common], help="stop the stack started by `up`")
    down.set_defaults(func=cmd_down)
