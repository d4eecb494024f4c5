"""`learnerfit checkpoints [list | show VERSION | promote VERSION | rollback [VERSION]]`: the learner checkpoints a
run registered, and which one the learner services follow.

Reads the registry directory the local stack's trainer registers into (the same
default), so it works with no stack running; or, given `--registry-target`, asks a
registry service over gRPC (a cluster's, every page of it). Promote and roll back go
through a registry service's API (the running local stack's, or the one given), which
records the decision and announces it, so every learner service follows the same one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from google.protobuf.json_format import MessageToDict

from learnerfit.cli.output import console, say, table
from learnerfit.domain.promotion import followed, state_words
from learnerfit.domain.records import enum_name
from learnerfit.errors import InvalidInput
from learnerfit.local.stack import StackState
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
    learner = followed(checkpoints)
    rows = [(c.version + (" *" if learner is not None and c.version == learner.version else ""),
             enum_name(records_pb2.CheckpointKind, c.kind), f"{c.created_at.ToDatetime():%Y-%m-%d %H:%M:%S}",
             len(c.example_ids), c.policy or "-",
             " ".join(f"{k}={v:.3f}" for k, v in sorted(c.eval.items())) or "not evaluated",
             _state(c.promotion), c.promotion.reason or "-") for c in checkpoints]
    console.print(table(("version", "kind", "created", "examples", "policy", "eval", "promotion", "why"), rows))
    say(f"{len(checkpoints)} checkpoints in {registry.root}; the learner services follow "
        f"{learner.version + ' (*)' if learner is not None else 'the base model'}")
    return 0


def _state(promotion: records_pb2.Promotion) -> str:
    if promotion.state == records_pb2.PROMOTION_STATE_UNSPECIFIED:
        return "followed (before the gate)"
    state = state_words(promotion.state)
    return f"{state} ({promotion.decided_by})" if promotion.decided_by else state


def _service(args: argparse.Namespace) -> RegistryClient:
    """The registry service a promotion goes through: the one given, else the running local stack's."""
    target = getattr(args, "registry_target", None)
    if not target:
        try:
            target = StackState.load(Path(args.dir)).services["registry"].grpc_target
        except (FileNotFoundError, KeyError):
            raise InvalidInput("--registry-target", "promote and rollback go through a registry service, which "
                                                    "announces them to the learner services: give its address, or "
                                                    "start the local stack (`learnerfit up`)") from None
    return RegistryClient(target, timeout_s=30)


def cmd_promote(args: argparse.Namespace) -> int:
    client = _service(args)
    checkpoint = client.set_promotion(args.version, records_pb2.Promotion(
        state=records_pb2.PROMOTION_STATE_PROMOTED, decided_by="operator", reason=args.reason or "promoted by hand"))
    say(f"{checkpoint.version} promoted: the learner services follow it from their next batch")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    client = _service(args)
    version = args.version
    if version is None:
        learner = followed(client.list())
        if learner is None:
            raise InvalidInput("version", "the learner services follow the base model: nothing to roll back")
        version = learner.version
    client.set_promotion(version, records_pb2.Promotion(
        state=records_pb2.PROMOTION_STATE_ROLLED_BACK, decided_by="operator",
        reason=args.reason or "rolled back by hand"))
    now = followed(client.list())
    say(f"{version} rolled back: the learner services follow {now.version if now else 'the base model'} from their "
        "next batch")
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
    sub = checkpoints.add_subparsers(dest="checkpoints_command", metavar="{list,show,promote,rollback}")
    sub.add_parser("list", parents=[common, registry], help="one row per checkpoint").set_defaults(func=cmd_list)
    show = sub.add_parser("show", parents=[common, registry], help="one checkpoint, whole, as JSON")
    show.add_argument("version", help="e.g. v1")
    show.set_defaults(func=cmd_show)
    promote = sub.add_parser("promote", parents=[common, registry],
                             help="make a checkpoint the learner the services follow (e.g. one the gate refused)")
    promote.add_argument("version", help="e.g. v3")
    promote.add_argument("--reason", help="why, recorded with the decision")
    promote.set_defaults(func=cmd_promote)
    rollback = sub.add_parser("rollback", parents=[common, registry],
                              help="take a promoted checkpoint back (default: the one followed now); the one promoted "
                                   "before it is followed again")
    rollback.add_argument("version", nargs="?", help="e.g. v3 (default: the followed one)")
    rollback.add_argument("--reason", help="why, recorded with the decision")
    rollback.set_defaults(func=cmd_rollback)
