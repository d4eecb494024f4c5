"""The `learnerfit` command: run the local stack (once, or as a continuous stream), submit problems, follow
batches, export curated data, list checkpoints, dead letters and prompts. One module per command group; each
registers its commands here."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

import grpc

from learnerfit.cli import batches, checkpoints, dead_letters, prompts, serve, stack, stream, study
from learnerfit.cli.output import say
from learnerfit.domain.problems import ProblemSourceError
from learnerfit.errors import LearnerFitError
from learnerfit.local.stack import StackError

DEFAULT_DIR = ".learnerfit"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnerfit",
        description="Curate math-reasoning training data for a small learner model on the local stack.",
        epilog="Quick start: `learnerfit run` starts the stack, curates a small batch, writes JSONL, stops.",
    )
    parser.add_argument("--dir", default=DEFAULT_DIR, help="local stack state, logs and runs (default: %(default)s)")
    # Accepted after the command too: `learnerfit up --dir X` and `learnerfit --dir X up` mean the same.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", default=argparse.SUPPRESS, help="local stack state, logs and runs "
                                                                 f"(default: {DEFAULT_DIR})")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (stack, stream, study, batches, checkpoints, dead_letters, prompts, serve):
        group.register(commands, common)
    return parser


def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (e.g. from a supervisor or `timeout`) unwinds like Ctrl-C, so `run` stops what it started.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except (ProblemSourceError, StackError, TimeoutError, LearnerFitError) as exc:
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
