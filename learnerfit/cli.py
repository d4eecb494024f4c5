"""The `learnerfit` command: run the local stack, submit problems, follow batches, export curated data."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from learnerfit.problems import EASY_ARITHMETIC, ProblemSourceError, from_jsonl, from_reasoning_gym, parse_options
from learnerfit.stack import LocalStack, StackError, StackState, stop_recorded_stack
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc
from services.common.grpc_runtime import channel
from services.common.trajectories import origin_name, verdict_name

DEFAULT_DIR = Path(".learnerfit")


# -- problems and submission ----------------------------------------------------

def _problems(args: argparse.Namespace, seed_offset: int = 0) -> list[records_pb2.Problem]:
    if args.file:
        return from_jsonl(Path(args.file))
    options = parse_options(args.family_option) if args.family_option else (
        dict(EASY_ARITHMETIC) if args.family == "basic_arithmetic" else {})
    return from_reasoning_gym(args.family, args.count, seed=args.problem_seed + seed_offset, options=options)


def _submit_request(args: argparse.Namespace, seed_offset: int = 0) -> services_pb2.SubmitBatchRequest:
    request = services_pb2.SubmitBatchRequest(problems=_problems(args, seed_offset), curation_policy=args.policy)
    sampling = request.sampling
    sampling.samples_per_problem = args.samples
    sampling.max_new_tokens = args.max_new_tokens
    sampling.temperature = args.temperature
    sampling.seed = args.seed
    request.oracle_modes.extend(args.oracle)
    return request


def _oracle_modes(value: str) -> list[int]:
    from services.oracle.selection import MODES_BY_NAME

    names = [n.strip() for n in value.split(",") if n.strip()]
    if names == ["all"]:
        names = list(MODES_BY_NAME)
    unknown = [n for n in names if n not in MODES_BY_NAME]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown Oracle mode(s) {', '.join(unknown)}; "
                                         f"choose from {', '.join(MODES_BY_NAME)} or all")
    return [MODES_BY_NAME[n] for n in names]


def _gateway(args: argparse.Namespace) -> services_pb2_grpc.GatewayStub:
    target = args.gateway or StackState.load(Path(args.dir)).gateway
    return services_pb2_grpc.GatewayStub(channel(target))


# -- output -----------------------------------------------------------------------

def example_record(example: records_pb2.CuratedExample) -> dict:
    """A curated example as one JSON object (TRL reads "messages")."""
    record = MessageToDict(example, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    record["origin"] = origin_name(example.origin)
    record["scores"]["verdict"] = verdict_name(example.scores.verdict)
    return record


def export_batch(gateway: services_pb2_grpc.GatewayStub, batch_id: str, path: Path) -> int:
    """Writes the batch's curated examples to JSONL, or to Parquet (Hugging Face datasets) for a .parquet path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records = (example_record(e) for e in gateway.StreamResults(services_pb2.StreamResultsRequest(batch_id=batch_id)))
    if path.suffix == ".parquet":
        from datasets import Dataset

        rows = list(records)
        # Written to a side file and moved, so a reader never sees half a file.
        partial = path.with_name(path.name + ".partial")
        Dataset.from_list(rows).to_parquet(str(partial))
        partial.replace(path)
        return len(rows)
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def progress_line(status: records_pb2.BatchStatus, elapsed: float) -> str:
    return (f"[{elapsed:6.1f}s] samples generated {status.samples_generated}/{status.samples_expected}"
            f" · scored {status.samples_scored}"
            f" · correct {status.samples_correct} · problems decided {status.problems_decided}/{status.problems}"
            f" · curated {status.curated}"
            + (f" · oracle {status.oracle_scored + status.oracle_rejected}/{status.oracle_expected or '?'}"
               f" ({status.oracle_rejected} rejected)" if status.oracle_expected or status.oracle_scored else ""))


def summary_table(status: records_pb2.BatchStatus, elapsed: float) -> str:
    header = ("problems", "samples", "correct", "unparsed", "curated", "time")
    row = (status.problems, status.samples_scored, status.samples_correct, status.samples_unparsed, status.curated,
           f"{elapsed:.1f}s")
    return _table(header, [row])


def scores_table(status: records_pb2.BatchStatus) -> str:
    """Quality (reward), compatibility (learner perplexity) and style of the batch's trajectories, by origin and
    verdict."""
    header = ("origin", "verdict", "samples", "mean reward", "mean ppl", "mean tokens", "latex/word", "kept of parent")

    def cell(summary, field: str, digits: int) -> str:
        return f"{getattr(summary, field):.{digits}f}" if summary.HasField(field) else "-"

    rows = [(origin_name(s.origin), verdict_name(s.verdict), s.samples, cell(s, "mean_reward", 3),
             cell(s, "mean_ppl", 2), cell(s, "mean_tokens", 1), cell(s, "mean_latex_density", 3),
             cell(s, "mean_overlap", 2))
            for s in status.summaries]
    return _table(header, rows)


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(line, widths, strict=True)) for line in [header, *rows])


def wait_for_batch(gateway, batch_id: str, timeout_s: float, started: float, stack: LocalStack | None = None,
                   interval_s: float = 2.0, heartbeat_s: float = 15.0) -> records_pb2.BatchStatus:
    """Prints progress until the batch is complete; raises TimeoutError past timeout_s.

    On a terminal the line is redrawn in place; in a log, a line is written when the
    counts change, or every heartbeat_s to show the run is alive.
    """
    tty = sys.stderr.isatty()
    last_counts, last_print = None, 0.0
    while True:
        if stack is not None:
            stack.check_alive()
        status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id))
        line = progress_line(status, time.monotonic() - started)
        counts = (status.samples_generated, status.samples_scored, status.problems_decided, status.curated,
                  status.oracle_scored, status.oracle_rejected)
        if tty:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif counts != last_counts or time.monotonic() - last_print >= heartbeat_s:
            print(line, file=sys.stderr, flush=True)
            last_counts, last_print = counts, time.monotonic()
        if status.state == records_pb2.BATCH_STATE_COMPLETE:
            if tty:
                print(file=sys.stderr)
            return status
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"batch {batch_id} not complete after {timeout_s:.0f}s: {line}")
        time.sleep(interval_s)


# -- commands ---------------------------------------------------------------------

def _stack(args: argparse.Namespace) -> LocalStack:
    env = {"LEARNERFIT_LOG_LEVEL": args.log_level}
    # Four problems (x N samples) per generate() pass: on CPU a larger pass is barely
    # faster per token, and smaller ones let progress show as the batch goes.
    generator_env = {"LEARNERFIT_MODEL": args.model, "LEARNERFIT_MAX_BATCH": "4"}
    # The drift scorer measures perplexity under the same learner the generator samples.
    drift_env = {"LEARNERFIT_MODEL": args.model}
    if getattr(args, "registry", None):
        # The learner side follows the newest registered checkpoint (checked between batches).
        follow_env = {"LEARNERFIT_REGISTRY_DIR": str(Path(args.registry).resolve()), "LEARNERFIT_REGISTRY_POLL_S": "1"}
        generator_env |= follow_env
        drift_env |= follow_env
    oracle_env = {"LEARNERFIT_LEARNER_MODEL": args.model}  # the style aligner's repair continues with the learner
    if args.oracle_endpoint:
        oracle_env |= {"LEARNERFIT_BACKEND": "openai", "LEARNERFIT_ENDPOINT": args.oracle_endpoint}
    if args.oracle_model:
        oracle_env["LEARNERFIT_MODEL"] = args.oracle_model
    return LocalStack(Path(args.dir), env=env, service_env={
        "generator": generator_env, "drift_scorer": drift_env, "refiner": oracle_env, "style_aligner": oracle_env})


def _prepare_model(model: str) -> None:
    from services.backends.weights import DEFAULT_CACHE, REWARD_MINILM, SMOLLM2, ensure_reward_model, ensure_smollm2

    if model == SMOLLM2:
        say("preparing SmolLM2-135M-Instruct weights (converted once from the packaged GGUF)")
        ensure_smollm2()
    if not (DEFAULT_CACHE / "models" / REWARD_MINILM / "model.safetensors").is_file():
        say("training the local reward model once (a reward head on MiniLM, about a minute)")
    ensure_reward_model()


def cmd_up(args: argparse.Namespace) -> int:
    _prepare_model(args.model)
    state = _stack(args).start(on_progress=say)
    say(f"local stack up: broker {state.bootstrap_servers}, gateway {state.gateway}; logs in {args.dir}/logs")
    say("stop it with `learnerfit down`")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = stop_recorded_stack(Path(args.dir))
    say(f"stopped {len(state.services)} services and the broker")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    response = _gateway(args).SubmitBatch(_submit_request(args))
    note = " (already submitted; nothing re-sent)" if response.already_submitted else ""
    say(f"batch {response.batch_id}: {len(response.problem_ids)} problems{note}")
    print(response.batch_id)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    gateway = _gateway(args)
    if args.watch:
        status = wait_for_batch(gateway, args.batch_id, args.timeout, time.monotonic())
    else:
        status = gateway.GetBatch(services_pb2.GetBatchRequest(batch_id=args.batch_id))
    print(json.dumps(MessageToDict(status, preserving_proto_field_name=True), indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    path = Path(args.output or f"{args.dir}/runs/{args.batch_id}.jsonl")
    count = export_batch(_gateway(args), args.batch_id, path)
    say(f"wrote {count} curated examples to {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    _submit_request(args)  # bad options fail here, before anything starts
    if args.rounds < 1:
        raise ProblemSourceError("--rounds must be at least 1")
    if args.rounds > 1 and not args.registry:
        # A registry of this run's own, so round 1 starts from the base learner.
        args.registry = f"{args.dir}/runs/registry-{time.strftime('%Y%m%d-%H%M%S')}"
    _prepare_model(args.model)
    stack = _stack(args)
    try:
        stack.start(on_progress=say)
        say(f"stack up in {time.monotonic() - started:.1f}s")
        gateway = services_pb2_grpc.GatewayStub(channel(stack.state.gateway))
        for round_number in range(1, args.rounds + 1):
            # Each round samples new problems of the same family (the problem seed moves on).
            request = _submit_request(args, seed_offset=round_number - 1)
            round_started = time.monotonic()
            if args.rounds > 1:
                say(f"round {round_number}/{args.rounds}")
            batch_id = gateway.SubmitBatch(request).batch_id
            say(f"batch {batch_id}: {len(request.problems)} problems x {args.samples} samples")
            status = wait_for_batch(gateway, batch_id, args.timeout, round_started, stack)
            suffix = f".round{round_number}" if args.rounds > 1 else ""
            path = Path(args.output.replace(".", f"{suffix}.", 1) if args.output and suffix else
                        args.output or f"{args.dir}/runs/{batch_id}.jsonl")
            count = export_batch(gateway, batch_id, path)
            _print_batch(status, time.monotonic() - round_started)
            print(f"curated examples ({count}): {path.resolve()}")
            if args.rounds > 1:
                _train_round(args, round_number, path, status)
    finally:
        say("stopping the local stack")
        stack.stop()
    return 0


def _print_batch(status: records_pb2.BatchStatus, elapsed: float) -> None:
    print(summary_table(status, elapsed))
    print(scores_table(status))
    if status.oracle_expected:
        reasons = ", ".join(f"{name} {count}" for name, count in sorted(status.oracle_rejections.items()))
        print(f"oracle outputs: {status.oracle_scored} accepted and scored, {status.oracle_rejected} rejected "
              f"by guardrails ({reasons or 'none'}; each with its reason on topic oracle-rejected), of "
              f"{status.oracle_expected}")


def _train_round(args: argparse.Namespace, round_number: int, examples_path: Path,
                 status: records_pb2.BatchStatus) -> None:
    """Trains on the round's curated examples, evaluates Avg@k on held-out problems, registers the checkpoint;
    the generator and drift scorer follow it from the next batch on."""
    from services.registry.store import CheckpointRegistry
    from trainer.sft import TrainSettings, load_examples, newest_learner, train_and_register

    registry = CheckpointRegistry(Path(args.registry))
    examples = load_examples(examples_path)
    sampled = status.samples_correct / max(status.samples_scored, 1)
    if not examples:
        say(f"round {round_number}: learner accuracy {sampled:.3f}; nothing curated, nothing to train")
        return
    name, base = newest_learner(registry, args.model)  # each round fine-tunes the newest learner
    say(f"round {round_number}: training on {len(examples)} curated examples (from {name})")
    checkpoint = train_and_register(registry, examples, start=base, base_model=args.model,
                                    settings=TrainSettings(loss_type=args.loss_type), eval_problems=args.eval_problems,
                                    eval_k=args.eval_k)
    score = checkpoint.eval[f"avg@{args.eval_k}"]
    print(f"round {round_number}: learner accuracy on its samples {sampled:.3f}; trained {checkpoint.version} on "
          f"{len(examples)} examples ({args.loss_type}); held-out avg@{args.eval_k} {score:.3f}")


# -- parser -----------------------------------------------------------------------

def say(message: str) -> None:
    print(f"learnerfit: {message}", file=sys.stderr, flush=True)


def _add_problem_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("problems")
    group.add_argument("--family", default="basic_arithmetic",
                       help="reasoning-gym family, e.g. basic_arithmetic, chain_sum, products, gsm_symbolic"
                            " (default: %(default)s, kept easy: two one-digit terms)")
    group.add_argument("--family-option", action="append", metavar="KEY=VALUE",
                       help="reasoning-gym option, repeatable (e.g. max_terms=3); replaces the easy defaults")
    group.add_argument("--count", type=int, default=8, help="problems to generate (default: %(default)s)")
    group.add_argument("--problem-seed", type=int, default=0, help="seed of the problem generator")
    group.add_argument("--file", help="JSONL of problems ({\"question\": ..., \"answer\": ...}) instead of a family")
    sampling = parser.add_argument_group("sampling and curation")
    sampling.add_argument("--samples", type=int, default=8, help="learner samples per problem, N (default: %(default)s)")
    sampling.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default: %(default)s)")
    sampling.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sample (default: %(default)s)")
    sampling.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    sampling.add_argument("--policy", default="rejection_sampling", help="curation policy (default: %(default)s)")
    sampling.add_argument("--oracle", type=_oracle_modes, default=[], metavar="MODES",
                          help="Oracle work on top of the learner's samples, comma-separated: refine, synthesize, "
                               "rewrite, repair, or all (default: none). The local Oracle is SmolLM2 unless "
                               "--oracle-endpoint names a real one")


def _add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m-instruct",
                        help="learner: 'smollm2-135m-instruct', a local model directory or a Hugging Face id")
    parser.add_argument("--oracle-endpoint",
                        help="OpenAI-compatible base URL of the Oracle (a hosted model or `vllm serve`, key in "
                             "OPENAI_API_KEY); default: SmolLM2 in process, a weak local stand-in")
    parser.add_argument("--oracle-model", help="Oracle model name at --oracle-endpoint, or a local model")
    parser.add_argument("--log-level", default="INFO", help="services' log level (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnerfit",
        description="Curate math-reasoning training data for a small learner model on the local stack.",
        epilog="Quick start: `learnerfit run` starts the stack, curates a small batch, writes JSONL, stops.",
    )
    parser.add_argument("--dir", default=str(DEFAULT_DIR), help="local stack state, logs and runs (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the stack, curate one batch end to end, export it, stop",
                              description="Starts broker and services, submits a batch, shows progress, prints a "
                                          "summary and writes the curated examples to JSONL; stops everything after.")
    _add_stack_options(run)
    _add_problem_options(run)
    run.add_argument("--timeout", type=float, default=900, help="give up after this many seconds (default: %(default)s)")
    run.add_argument("--rounds", type=int, default=1,
                     help="closed loop: R rounds of sample -> score -> curate -> train -> evaluate; the generator and "
                          "drift scorer follow each new checkpoint (default: %(default)s, no training)")
    run.add_argument("--loss-type", choices=["dft", "nll"], default="dft", help="training loss (default: %(default)s)")
    run.add_argument("--eval-problems", type=int, default=16, help="held-out problems per checkpoint eval")
    run.add_argument("--eval-k", type=int, default=4, help="samples per held-out problem: Avg@k (default: %(default)s)")
    run.add_argument("--registry", help="checkpoint registry the learner follows and --rounds trains into "
                                        "(default with --rounds: a new one under <dir>/runs/)")
    run.add_argument("--output", help="JSONL path, or .parquet for Parquet (default: <dir>/runs/<batch>.jsonl)")
    run.set_defaults(func=cmd_run)

    up = commands.add_parser("up", help="start the broker and every service in the background")
    _add_stack_options(up)
    up.set_defaults(func=cmd_up)

    down = commands.add_parser("down", help="stop the stack started by `up`")
    down.set_defaults(func=cmd_down)

    submit = commands.add_parser("submit", help="submit a batch of problems to the gateway; prints its batch id")
    submit.add_argument("--gateway", help="gateway address host:port (default: the stack started by `up`)")
    _add_problem_options(submit)
    submit.set_defaults(func=cmd_submit)

    status = commands.add_parser("status", help="show a batch's progress")
    status.add_argument("batch_id")
    status.add_argument("--gateway", help="gateway address host:port (default: the stack started by `up`)")
    status.add_argument("--watch", action="store_true", help="follow until the batch is complete")
    status.add_argument("--timeout", type=float, default=900, help="with --watch: give up after this many seconds")
    status.set_defaults(func=cmd_status)

    export = commands.add_parser("export", help="write a batch's curated examples to JSONL (waits for completion)")
    export.add_argument("batch_id")
    export.add_argument("--gateway", help="gateway address host:port (default: the stack started by `up`)")
    export.add_argument("--output", "-o",
                        help="JSONL path, or .parquet for Parquet (default: <dir>/runs/<batch>.jsonl)")
    export.set_defaults(func=cmd_export)

    checkpoints = commands.add_parser("checkpoints", help="the learner checkpoints in the registry")
    checkpoints.add_argument("--registry", help="registry root (default: LEARNERFIT_REGISTRY_DIR or "
                                                "~/.cache/learnerfit/registry)")
    checkpoint_commands = checkpoints.add_subparsers(dest="checkpoints_command", required=True, metavar="{list,show}")
    checkpoint_commands.add_parser("list", help="one line per checkpoint").set_defaults(func=cmd_checkpoints_list)
    show_checkpoint = checkpoint_commands.add_parser("show", help="one checkpoint, whole, as JSON")
    show_checkpoint.add_argument("version", help="e.g. v1")
    show_checkpoint.set_defaults(func=cmd_checkpoints_show)

    prompts = commands.add_parser("prompts", help="the Oracle's prompt templates (versioned files)")
    prompt_commands = prompts.add_subparsers(dest="prompts_command", required=True, metavar="{list,show}")
    prompt_commands.add_parser("list", help="every template id and its file").set_defaults(func=cmd_prompts_list)
    show = prompt_commands.add_parser("show", help="print templates exactly as the Oracle gets them")
    show.add_argument("names", nargs="*", help="template names or ids, e.g. rewrite or rewrite.v1 (default: all)")
    show.set_defaults(func=cmd_prompts_show)
    return parser


def _registry(args: argparse.Namespace):
    from services.registry.settings import RegistrySettings
    from services.registry.store import CheckpointRegistry

    root = Path(args.registry) if args.registry else RegistrySettings().registry_dir
    return CheckpointRegistry(root)


def cmd_checkpoints_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    checkpoints = registry.list()
    if not checkpoints:
        say(f"no checkpoints in {registry.root}")
    for c in checkpoints:
        kind = records_pb2.CheckpointKind.Name(c.kind).removeprefix("CHECKPOINT_KIND_").lower()
        evals = " ".join(f"{k}={v:.3f}" for k, v in sorted(c.eval.items())) or "not evaluated"
        print(f"{c.version:<6} {kind:<8} {c.created_at.ToDatetime():%Y-%m-%d %H:%M:%S}  base {c.base_model}  "
              f"{len(c.example_ids)} examples ({c.policy or 'no policy'})  {evals}")
    return 0


def cmd_checkpoints_show(args: argparse.Namespace) -> int:
    from services.registry.store import RegistryError

    registry = _registry(args)
    try:
        checkpoint = registry.get(args.version)
    except (RegistryError, KeyError) as exc:
        raise StackError(str(exc.args[0])) from None
    record = MessageToDict(checkpoint, preserving_proto_field_name=True)
    record["absolute_path"] = str(registry.path_of(checkpoint))
    print(json.dumps(record, indent=2))
    return 0


def cmd_prompts_list(args: argparse.Namespace) -> int:
    from services.oracle.prompts import all_templates

    for template_id, prompt in all_templates().items():
        print(f"{template_id:<20} {prompt.path}")
    return 0


def cmd_prompts_show(args: argparse.Namespace) -> int:
    from services.oracle.prompts import all_templates, template

    chosen = []
    for name in args.names or [t.name for t in all_templates().values()]:
        base, _, version = name.partition(".v")
        try:
            chosen.append(template(base, int(version) if version else None))
        except (KeyError, ValueError) as exc:
            raise ProblemSourceError(f"prompt {name!r}: {exc}") from None
    for prompt in dict.fromkeys(chosen):
        fields = ", ".join(sorted(prompt.fields))
        print(f"=== {prompt.id} ({prompt.path.name}; fields: {fields})\n[system]\n{prompt.system}\n[user]\n"
              f"{prompt.user}\n")
    return 0


def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (e.g. from a supervisor or `timeout`) unwinds like Ctrl-C, so `run` stops what it started.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except (ProblemSourceError, StackError, TimeoutError) as exc:
        say(f"error: {exc}")
        return 1
    except grpc.RpcError as exc:
        say(f"error: {exc.code().name}: {exc.details()}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
