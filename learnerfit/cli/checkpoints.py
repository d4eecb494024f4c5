"""`learnerfit checkpoints [list | show VERSION]`: the learner checkpoints a run registered.

Reads the registry directory the local stack's trainer registers into (the same
default), so it works with no stack running; or, given `--registry-target`, asks a
registry service over gRPC (a cluster's, every page of it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from google.protobuf.json_format import MessageToDict

from learnerfit.cli.output import console, say, table
from learnerfit.domain.records import enum_name
from learnerfit.errors import InvalidInput
from learnerfit.paths import default_registry_dir
from learnerfit.registry.client import RegistryClient
from learnerfit.registry.store import CheckpointRegistry
from learnerfit.v1 import records_pb2


class _Remote:
    """The registry service, read through its API."""

    def __init__(self, target: str):
        self.client, self.root = RegistryClient(target, timeout_s=30), f"the registry at {target}"

    def list(self) -> list[records_pb2.Checkpoint]:
        return list(self.client.list())

    def get(self, version: str) -> records_pb2.Checkpoint:
        return self.client.get(version)


def _registry(args: argparse.Namespace) -> CheckpointRegistry | _Remote:
    given, target = getattr(args, "registry", None), getattr(args, "registry_target", None)  # before or after list
    if given and target:
        raise InvalidInput("--registry-target", "give a registry directory or a registry service, not both")
    if target:
        return _Remote(target)
    return CheckpointRegistry.reader(Path(given) if given else default_registry_dir())


def cmd_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    checkpoints = registry.list()
    if not checkpoints:
        say(f"no checkpoints in {registry.root}")
        return 0
    rows = [(c.version, enum_name(records_pb2.CheckpointKind, c.kind),
             f"{c.created_at.ToDatetime():%Y-%m-%d %H:%M:%S}", c.base_model, len(c.example_ids), c.policy or "-",
             " ".join(f"{k}={v:.3f}" for k, v in sorted(c.eval.items())) or "not evaluated") for c in checkpoints]
    console.print(table(("version", "kind", "created", "base", "examples", "policy", "eval"), rows))
    say(f"{len(checkpoints)} checkpoints in {registry.root}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    checkpoint = _registry(args).get(args.version)
    print(json.dumps(MessageToDict(checkpoint, preserving_proto_field_name=True), indent=2))
    return 0


def register(commands, common: argparse.ArgumentParser) -> None:
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument("--registry", default=argparse.SUPPRESS,
                          help=f"registry root (default: {default_registry_dir()}, where `learnerfit run` registers)")
    registry.add_argument("--registry-target", default=argparse.SUPPRESS, metavar="HOST:PORT",
                          help="a registry service to ask over gRPC instead of a directory (e.g. a cluster's)")
    checkpoints = commands.add_parser("checkpoints", parents=[common, registry],
                                      help="the learner checkpoints in the registry (default: list them)")
    checkpoints.set_defaults(func=cmd_list)
    sub = checkpoints.add_subparsers(dest="checkpoints_command", metavar="{list,show}")
    sub.add_parser("list", parents=[common, registry], help="one row per checkpoint").set_defaults(func=cmd_list)
    show = sub.add_parser("show", parents=[common, registry], help="one checkpoint, whole, as JSON")
    show.add_argument("version", help="e.g. v1")
    show.set_defaults(func=cmd_show)
