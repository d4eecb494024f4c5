"""`learnerfit submit | status | export`: batches on a running gateway, and the options that describe a batch."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from learnerfit.cli.output import example_record, follow_batch, say, status_record
from learnerfit.domain.batches import check_budget
from learnerfit.domain.ids import check_name
from learnerfit.domain.intake import IntakeLimits, SamplingDefaults, validate_sampling
from learnerfit.domain.oracle.selection import MODES_BY_NAME
from learnerfit.domain.problems import family_options, from_jsonl, from_reasoning_gym
from learnerfit.local.processes import channel
from learnerfit.local.stack import StackState
from learnerfit.v1 import records_pb2, services_pb2, services_pb2_grpc


def problems(args: argparse.Namespace, seed_offset: int = 0) -> list[records_pb2.Problem]:
    if args.file:
        return from_jsonl(Path(args.file))
    return from_reasoning_gym(args.family, args.count, seed=args.problem_seed + seed_offset,
                              options=family_options(args.family, args.family_option))


def submit_request(args: argparse.Namespace, seed_offset: int = 0) -> services_pb2.SubmitBatchRequest:
    sampling = records_pb2.SamplingSpec(samples_per_problem=args.samples, max_new_tokens=args.max_new_tokens,
                                        temperature=args.temperature, seed=args.seed)
    validate_sampling(sampling, IntakeLimits(), "sampling")  # bad options fail before a stack starts
    budget = records_pb2.OracleBudget(max_cost_usd=args.oracle_budget_usd, max_tokens=args.oracle_budget_tokens)
    check_budget(budget, bool(args.oracle))  # before a stack starts
    return services_pb2.SubmitBatchRequest(problems=problems(args, seed_offset), curation_policy=args.policy,
                                           oracle_modes=args.oracle, sampling=sampling, oracle_budget=budget)


def oracle_modes(value: str) -> list[int]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if names == ["all"]:
        names = list(MODES_BY_NAME)
    unknown = [n for n in names if n not in MODES_BY_NAME]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown Oracle mode(s) {', '.join(unknown)}; "
                                         f"choose from {', '.join(MODES_BY_NAME)} or all")
    return [MODES_BY_NAME[n] for n in names]


def gateway(args: argparse.Namespace) -> services_pb2_grpc.GatewayStub:
    target = args.gateway or StackState.load(Path(args.dir)).gateway
    return services_pb2_grpc.GatewayStub(channel(target))


def wait_for_batch(stub: services_pb2_grpc.GatewayStub, batch_id: str, timeout_s: float, started: float,
                   check=lambda: None) -> records_pb2.BatchStatus:
    return follow_batch(lambda: stub.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id)), timeout_s, started,
                        check)


def export_batch(stub: services_pb2_grpc.GatewayStub, batch_id: str, path: Path) -> int:
    """Writes the batch's curated examples to JSONL, or to Parquet (Hugging Face datasets) for a .parquet path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records = (example_record(e) for e in stub.StreamResults(services_pb2.StreamResultsRequest(batch_id=batch_id)))
    # Written to a side file and moved, so a reader never sees half a file.
    partial = path.with_name(path.name + ".partial")
    if path.suffix == ".parquet":
        from datasets import Dataset

        rows = list(records)
        Dataset.from_list(rows).to_parquet(str(partial))
        partial.replace(path)
        return len(rows)
    count = 0
    with open(partial, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    partial.replace(path)
    return count


def cmd_submit(args: argparse.Namespace) -> int:
    response = gateway(args).SubmitBatch(submit_request(args))
    note = " (already submitted; nothing re-sent)" if response.already_submitted else ""
    say(f"batch {response.batch_id}: {len(response.problem_ids)} problems{note}")
    print(response.batch_id)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    stub = gateway(args)
    if args.watch:
        status = wait_for_batch(stub, args.batch_id, args.timeout, time.monotonic())
    else:
        status = stub.GetBatch(services_pb2.GetBatchRequest(batch_id=args.batch_id))
    print(json.dumps(status_record(status), indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    path = Path(args.output or f"{args.dir}/runs/{check_name(args.batch_id, 'batch_id')}.jsonl")
    count = export_batch(gateway(args), args.batch_id, path)
    say(f"wrote {count} curated examples to {path}")
    return 0


def add_problem_options(parser: argparse.ArgumentParser) -> None:
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
    defaults = SamplingDefaults()  # the services' defaults for a request that leaves them unset: one home
    sampling.add_argument("--samples", type=int, default=defaults.samples_per_problem,
                          help="learner samples per problem, N (default: %(default)s)")
    sampling.add_argument("--temperature", type=float, default=defaults.temperature,
                          help="sampling temperature (default: %(default)s)")
    sampling.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens,
                          help="tokens per sample (default: %(default)s)")
    sampling.add_argument("--seed", type=int, default=defaults.seed, help="sampling seed (default: %(default)s)")
    sampling.add_argument("--policy", default="rejection_sampling", help="curation policy (default: %(default)s)")
    sampling.add_argument("--oracle", type=oracle_modes, default=[], metavar="MODES",
                          help="Oracle work on top of the learner's samples, comma-separated: refine, synthesize, "
                               "rewrite, repair, or all (default: none). The Oracle is the rule-based teacher unless "
                               "--oracle-endpoint or --oracle-model names a model")
    sampling.add_argument("--oracle-budget-usd", type=float, metavar="USD",
                          help="most the batch's Oracle work may cost (needs the model's price: --oracle-price, or "
                               "the setting oracle.prices); once spent, no more Oracle requests are made and the "
                               "batch is decided on what it has (stream: the whole stream's; default: no cap)")
    sampling.add_argument("--oracle-budget-tokens", type=int, metavar="TOKENS",
                          help="most prompt + completion tokens the batch's Oracle work may take (stream: the whole "
                               "stream's; default: no cap)")


def add_gateway_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateway", help="gateway address host:port (default: the stack started by `up`)")


def register(commands, common: argparse.ArgumentParser) -> None:
    submit = commands.add_parser("submit", parents=[common],
                                 help="submit a batch of problems to the gateway; prints its batch id")
    add_gateway_option(submit)
    add_problem_options(submit)
    submit.set_defaults(func=cmd_submit)

    status = commands.add_parser("status", parents=[common], help="show a batch's progress")
    status.add_argument("batch_id")
    add_gateway_option(status)
    status.add_argument("--watch", action="store_true", help="follow until the batch is complete")
    status.add_argument("--timeout", type=float, default=900, help="with --watch: give up after this many seconds")
    status.set_defaults(func=cmd_status)

    export = commands.add_parser("export", parents=[common],
                                 help="write a batch's curated examples to JSONL (waits for completion)")
    export.add_argument("batch_id")
    add_gateway_option(export)
    export.add_argument("--output", "-o", help="JSONL path, or .parquet for Parquet (default: <dir>/runs/<batch>.jsonl)")
    export.set_defaults(func=cmd_export)
